"""What runs inside the Dask tasks of data-parallel training: NumPy only, no Dask.

A worker's *share* is a list of partitions, never their rows: memory does not
grow with the dataset. Each epoch a worker walks its share as the single-process
stream walks a dataset: the partitions in a seeded order, read
``group`` partitions at a time, each group's training rows scaled and shuffled
together. The epoch is the groups one after the other, and minibatch k is rows
``k*b .. (k+1)*b`` of it (a batch may straddle two groups).

A round trains ``steps`` minibatches of that epoch from the parameters and
optimizer state the driver sent, with the same
:class:`~nnpipe.training.trainer.Trainer` that trains in one process, and sends
back the model's arrays with the rows it trained on. Every task is a pure
function of its arguments, so Dask can run it again on another worker; the
groups a process has built stay in a small per-process cache, so a worker walking
its epoch round by round reads each partition once per epoch.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnpipe.core.threads import blas_threads
from nnpipe.core.validation import resolve_dtype
from nnpipe.data.partition_io import DataError

from .trainer import Trainer

# Groups kept per process: one of each share, for up to four shares (a worker that
# took over the share of a worker that died walks both).
CACHED_GROUPS = 4


@dataclass(frozen=True)
class Share:
    """One worker's partitions (sorted), the training rows of each, and the worker's address."""

    slot: int
    indices: tuple[int, ...]
    rows: tuple[int, ...]
    worker: str = ""

    @property
    def n_rows(self) -> int:
        return sum(self.rows)


@dataclass(frozen=True)
class Source:
    """How every worker reads partitions: the same rows, scaling and order as one process.

    ``run`` names the training run (the cache's key); ``group`` is the partitions
    shuffled together.
    """

    dataset: Any
    split: Any
    x_scaler: Any
    dtype: str
    y_dtype: Any
    run: str
    random_state: int = 0
    shuffle: bool = True
    group: int = 4


def _read(source: Source, share: Share, index: int, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Partition ``index``'s training or validation rows, scaled, in the model's dtypes."""
    ds = source.dataset
    try:
        if source.split is None:
            X, y = ds.read_partition(index) if side == "train" else (None, None)
        else:
            X, y = ds.read_partition(index, side, source.split)
    except (OSError, DataError) as exc:
        if not isinstance(exc, OSError) and not isinstance(exc.__cause__, OSError):
            raise  # a file the worker can open but not use: the dataset's own error
        raise DataError(
            f"Dask worker {share.worker} cannot read partition {index} of dataset "
            f"{str(ds.path)!r}: {exc}; the workers must see the dataset at the same path "
            "(a shared volume, or object storage such as s3://)"
        ) from exc
    dt = resolve_dtype(source.dtype)
    if X is None:
        return np.empty((0, ds.n_features), dt), np.empty(0, source.y_dtype)
    X = X.astype(dt, copy=False) if source.x_scaler is None else source.x_scaler.transform(X)
    y = y[:, 0] if y.shape[1] == 1 else y  # as the single-process stream yields it
    return np.asarray(X, dtype=dt), np.ascontiguousarray(y, dtype=source.y_dtype)


def check_share(source: Source, share: Share) -> int:
    """Open the share's first partition here: a path the workers cannot see fails early."""
    _read(source, share, share.indices[0], "train")
    return share.n_rows


def epoch_groups(source: Source, share: Share, epoch: int) -> list[list[int]]:
    """The share's partitions of ``epoch``, in order, ``source.group`` at a time."""
    order = list(share.indices)
    if source.shuffle:
        rng = np.random.default_rng([source.random_state, epoch, share.slot])
        order = [order[i] for i in rng.permutation(len(order))]
    return [order[i : i + source.group] for i in range(0, len(order), source.group)]


class _Groups:
    """The groups this process built most recently (a bounded, thread-safe LRU).

    Keys are ``(run, slot, epoch, group)``. A share's walk only goes forward, so
    building group g first drops that share's earlier groups: a worker holds one
    group of its share (a round run again after a failure reads its group again).
    """

    def __init__(self, size: int) -> None:
        self.size, self.lock, self.items = size, threading.Lock(), OrderedDict()

    def get(self, key: tuple, build: Any) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            for old in [k for k in self.items if k[:2] == key[:2] and k[2:] < key[2:]]:
                del self.items[old]  # before building: its memory is free for the new one
        value = build()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


GROUPS = _Groups(CACHED_GROUPS)


def read_group(
    source: Source, share: Share, epoch: int, g: int, indices: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Group ``g`` of ``epoch``: its partitions' training rows, stacked and shuffled together.

    Each partition, as it is read, is scattered to its rows' shuffled places in
    the group's arrays: the group plus one partition in memory at the peak.
    """
    rows = dict(zip(share.indices, share.rows, strict=True))
    n = sum(rows[i] for i in indices)

    def build() -> tuple[np.ndarray, np.ndarray]:
        order = None
        if source.shuffle:
            rng = np.random.default_rng([source.random_state, epoch, share.slot, g + 1])
            order = rng.permutation(n)
        X = y = None
        at = 0
        for i in indices:
            Xi, yi = _read(source, share, i, "train")
            if len(Xi) != rows[i]:
                raise DataError(
                    f"partition {i} of dataset {str(source.dataset.path)!r} has {len(Xi)} "
                    f"training rows, not the {rows[i]} it had when training started: the "
                    "dataset changed during the run"
                )
            if X is None:
                X = np.empty((n, *Xi.shape[1:]), Xi.dtype)
                y = np.empty((n, *yi.shape[1:]), yi.dtype)
            places = slice(at, at + len(Xi)) if order is None else order[at : at + len(Xi)]
            X[places], y[places] = Xi, yi
            at += len(Xi)
        return X, y

    return GROUPS.get((source.run, share.slot, epoch, g), build)


def batches(
    source: Source, share: Share, epoch: int, first: int, steps: int, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Minibatches ``first .. first + steps - 1`` of the share's ``epoch``, one at a time.

    A batch is a view of its group; lazily made, a trained batch lets its group go.
    The batches next to a change of group (the head of one that straddles two, and
    the one before it) are copies, so a worker never holds two groups at once.
    """
    groups = epoch_groups(source, share, epoch)
    rows = dict(zip(share.indices, share.rows, strict=True))
    ends = np.cumsum([sum(rows[i] for i in grp) for grp in groups])
    total = int(ends[-1]) if len(ends) else 0
    for k in range(first, first + steps):
        start, stop = k * batch_size, min((k + 1) * batch_size, total)
        if start >= stop:
            return
        pieces = []
        g = int(np.searchsorted(ends, start, side="right"))
        while start < stop:
            X, y = read_group(source, share, epoch, g, groups[g])
            begin = start - (int(ends[g]) - len(X))
            take = min(stop, int(ends[g])) - start
            view = (X[begin : begin + take], y[begin : begin + take])
            del X, y
            # A view only while its group stays: the head of a straddling batch, and
            # a batch after which the next one needs another group (the trainer
            # still holds it while that group is built), are copies: a worker never
            # holds two groups.
            next_stop = min(stop + batch_size, total)
            keep_view = start + take == stop and next_stop <= int(ends[g])
            pieces.append(view if keep_view else tuple(a.copy() for a in view))
            del view
            start += take
            g += 1
        if len(pieces) > 1:
            pieces = [tuple(np.concatenate(side) for side in zip(*pieces, strict=True))]
        yield pieces[0]


def _model(state: Any, model_type: type, batch_size: int) -> Any:
    """The model from the driver's state: an unfitted estimator, or its ``to_arrays`` pair."""
    # A copy of an unfitted model: tasks in threads of one process must not share it.
    model = model_type.from_arrays(*state) if isinstance(state, tuple) else copy.deepcopy(state)
    # One BLAS thread per worker process: the workers are the parallelism. Each batch
    # is one optimizer step (a batch of batch_size rows is never cut again).
    model.n_threads, model.batch_size = 1, batch_size
    return model


class _Counted:
    """An iterator that counts what it gave."""

    def __init__(self, items: Iterator[Any]) -> None:
        self.items, self.n = items, 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            self.n += 1
            yield item


def run_round(
    state: Any,
    model_type: type,
    source: Source,
    share: Share,
    epoch: int,
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
        work = _Counted(batches(source, share, epoch, first, steps, batch_size))
        loss_sum, n_seen = trainer.train_epoch(work, counts=counts)
    arrays, meta = model.to_arrays() if n_seen else (None, None)
    return {
        "arrays": arrays,  # the model dies with this task: its buffers need no copy
        "meta": meta,
        "steps": work.n,
        "loss_sum": loss_sum,
        "n": n_seen,
        "correct": counts[0] if counts is not None else 0,
        "seconds": time.perf_counter() - started,
    }


def validate(
    state: tuple, model_type: type, source: Source, share: Share, classes: Any, size: int = 8192
):
    """(loss sum, rows, rows right) of the model ``state`` on the share's validation rows."""
    if source.split is None:
        return 0.0, 0, 0
    model = _model(state, model_type, size)
    trainer = Trainer(model, classes=classes, early_stopping=False)
    counts = [0, 0] if classes is not None else None
    loss_sum, n = 0.0, 0
    with blas_threads(1):
        for index in share.indices:
            X, y = _read(source, share, index, "validation")
            parts = [(X[s : s + size], y[s : s + size]) for s in range(0, len(X), size)]
            if parts:
                mean = trainer.validation_loss(parts, counts=counts)
                loss_sum, n = loss_sum + float(mean) * len(X), n + len(X)
    return loss_sum, n, counts[0] if counts is not None else 0
