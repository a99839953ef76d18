"""What runs inside the Dask tasks of data-parallel training: NumPy only, no Dask.

A worker's *share* is the rows of its partitions, read once and kept (scaled,
in the model's dtype) for the whole run. Each epoch a seeded permutation of the
share orders its rows; a round trains ``steps`` minibatches of that order from
the parameters and optimizer state the driver sent, with the same
:class:`~nnpipe.training.trainer.Trainer` that trains in one process, and sends
back the model's arrays with the rows it trained on. Every function here is a
pure function of its arguments, so Dask can run it again on another worker.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnpipe.core.threads import blas_threads
from nnpipe.core.validation import resolve_dtype
from nnpipe.data.partition_io import DataError

from .trainer import Trainer


@dataclass
class Share:
    """One worker's training rows and validation rows, in partition order."""

    X: np.ndarray  # (n, n_features), the model's dtype
    y: np.ndarray  # (n,) one target or class indices, else (n, n_targets)
    X_val: np.ndarray
    y_val: np.ndarray


def _scaled(scaler: Any, X: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if scaler is None:
        return X.astype(dtype, copy=False)
    return np.asarray(scaler.transform(X), dtype=dtype)


def _targets(y: np.ndarray, y_dtype: Any) -> np.ndarray:
    y = y[:, 0] if y.shape[1] == 1 else y  # as the single-process stream yields it
    return np.ascontiguousarray(y, dtype=y_dtype)


def _join(parts: list[np.ndarray], width: tuple[int, ...], dtype: Any) -> np.ndarray:
    if not parts:
        return np.empty((0, *width), dtype=dtype)
    return np.concatenate(parts)


def read_share(
    dataset: Any,
    indices: list[int],
    split: Any,
    x_scaler: Any,
    dtype: str,
    y_dtype: Any,
    where: str,
) -> Share:
    """Read partitions ``indices`` of ``dataset`` (training and validation rows) as one Share.

    ``where`` names the worker the share was placed on, for the error when it
    cannot read the files.
    """
    dt = resolve_dtype(dtype)
    xs, ys, xvs, yvs = [], [], [], []
    for index in indices:
        try:
            if split is None:
                (X, y), (Xv, yv) = dataset.read_partition(index), (None, None)
            else:
                (X, y), (Xv, yv) = dataset.read_partition_sides(index, split)
        except (OSError, DataError) as exc:
            if not isinstance(exc, OSError) and not isinstance(exc.__cause__, OSError):
                raise  # a file the worker can open but not use: the dataset's own error
            raise DataError(
                f"Dask worker {where} cannot read partition {index} of dataset "
                f"{str(dataset.path)!r}: {exc}; the workers must see the dataset at the "
                "same path (a shared volume, or object storage such as s3://)"
            ) from exc
        xs.append(_scaled(x_scaler, X, dt))
        ys.append(_targets(y, y_dtype))
        if Xv is not None and len(Xv):
            xvs.append(_scaled(x_scaler, Xv, dt))
            yvs.append(_targets(yv, y_dtype))
    n_features = dataset.n_features
    y_width = ys[0].shape[1:] if ys else ()
    return Share(
        X=np.ascontiguousarray(_join(xs, (n_features,), dt)),
        y=_join(ys, y_width, y_dtype),
        X_val=_join(xvs, (n_features,), dt),
        y_val=_join(yvs, y_width, y_dtype),
    )


def share_rows(share: Share) -> tuple[int, int]:
    """(training rows, validation rows) of a share."""
    return len(share.X), len(share.X_val)


def epoch_order(n_rows: int, random_state: int, epoch: int, slot: int) -> np.ndarray:
    """The order worker ``slot`` visits its ``n_rows`` rows in ``epoch`` (a seeded permutation)."""
    rng = np.random.default_rng([random_state, epoch, slot])
    return rng.permutation(n_rows)


def batches(
    share: Share, order: np.ndarray | None, first: int, steps: int, batch_size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Minibatches ``first .. first + steps - 1`` of the epoch ``order`` (rows in order if None)."""
    out = []
    for k in range(first, first + steps):
        rows = slice(k * batch_size, (k + 1) * batch_size)
        if order is None:
            Xb, yb = share.X[rows], share.y[rows]
        else:
            idx = order[rows]
            Xb, yb = np.take(share.X, idx, axis=0), np.take(share.y, idx, axis=0)
        if len(Xb) == 0:
            break
        out.append((Xb, yb))
    return out


def _model(state: Any, model_type: type, batch_size: int) -> Any:
    """The model from the driver's state: an unfitted estimator, or its ``to_arrays`` pair."""
    # A copy of an unfitted model: tasks in threads of one process must not share it.
    model = model_type.from_arrays(*state) if isinstance(state, tuple) else copy.deepcopy(state)
    # One BLAS thread per worker process: the workers are the parallelism. Each batch
    # is one optimizer step (a batch of batch_size rows is never cut again).
    model.n_threads, model.batch_size = 1, batch_size
    return model


def run_round(
    state: Any,
    model_type: type,
    share: Share,
    order: np.ndarray | None,
    first: int,
    steps: int,
    batch_size: int,
    classes: Any,
) -> dict[str, Any]:
    """Train ``steps`` minibatches from ``state``; return the model's arrays and what it saw.

    ``loss_sum`` is each batch's loss times its rows (as :meth:`Trainer.train_epoch`),
    ``correct`` the rows a classifier's steps classified right.
    """
    started = time.perf_counter()
    model = _model(state, model_type, batch_size)
    trainer = Trainer(model, classes=classes, early_stopping=False)
    counts = [0, 0] if classes is not None else None
    with blas_threads(1):
        work = batches(share, order, first, steps, batch_size)
        loss_sum, n_seen = trainer.train_epoch(work, counts=counts)
    arrays, meta = model.to_arrays() if n_seen else (None, None)
    return {
        "arrays": arrays,  # the model dies with this task: its buffers need no copy
        "meta": meta,
        "steps": len(work),
        "loss_sum": loss_sum,
        "n": n_seen,
        "correct": counts[0] if counts is not None else 0,
        "seconds": time.perf_counter() - started,
    }


def validate(state: tuple, model_type: type, share: Share, classes: Any, size: int = 8192):
    """(loss sum, rows, rows right) of the model ``state`` on the share's validation rows."""
    if not len(share.X_val):
        return 0.0, 0, 0
    model = _model(state, model_type, size)
    trainer = Trainer(model, classes=classes, early_stopping=False)
    counts = [0, 0] if classes is not None else None
    parts = [
        (share.X_val[s : s + size], share.y_val[s : s + size])
        for s in range(0, len(share.X_val), size)
    ]
    with blas_threads(1):
        mean = trainer.validation_loss(parts, counts=counts)
    n = len(share.X_val)
    return float(mean) * n, n, counts[0] if counts is not None else 0
