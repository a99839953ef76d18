"""Out-of-core training: epochs of streamed minibatches into ``partial_fit``.

The model is used only through its contract: ``partial_fit``, ``data_loss``,
``record_epoch``, ``restore_best_weights``, ``set_target_scaler``, ``save`` /
``load`` and ``learning_rate_``. Each epoch: train on the training rows, compute
the validation loss with the end-of-epoch weights, let ``record_epoch`` decide
about early stopping, call the callback, write a checkpoint. A rerun with the
same ``checkpoint_dir`` continues after the last completed epoch and, because
batches depend only on (random_state, epoch) and the checkpoint holds the
optimizer and RNG state, ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnpipe.core.serialization import atomic_write
from nnpipe.core.validation import check_positive

from .split import TrainValidationSplit
from .stream import MinibatchStream

STATE_FILE = "training_state.json"
_REQUIRED = ("partial_fit", "data_loss", "record_epoch", "restore_best_weights", "save")


@dataclass
class TrainingResult:
    """What :func:`train_out_of_core` did."""

    model: Any
    history: list[dict[str, Any]] = field(default_factory=list)  # one metrics dict per epoch
    stopped_early: bool = False
    epochs_done: int = 0
    resumed_from: int = 0  # epochs already done when this call started
    checkpoint: str | None = None  # last checkpoint written or loaded


def _write_json_atomic(path: Path, payload: dict) -> None:
    atomic_write(path, lambda fh: fh.write(json.dumps(payload, indent=1).encode("utf-8")))


def _fingerprint(dataset: Any) -> str | None:
    return getattr(dataset, "fingerprint", None)


def _load_state(checkpoint_dir: Path, model: Any, dataset: Any, random_state: int):
    state_path = checkpoint_dir / STATE_FILE
    if not state_path.is_file():
        return None, None
    try:
        state = json.loads(state_path.read_text())
        ckpt = checkpoint_dir / state["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"training state {str(state_path)!r} is unreadable: {exc}") from exc
    if state.get("random_state") != random_state:
        raise ValueError(
            f"checkpoint in {str(checkpoint_dir)!r} was trained with random_state="
            f"{state.get('random_state')!r}, not {random_state!r}; use the same seed to "
            "resume, or another checkpoint_dir to start over"
        )
    fp = _fingerprint(dataset)
    if fp is not None and state.get("dataset_fingerprint") not in (None, fp):
        raise ValueError(
            f"checkpoint in {str(checkpoint_dir)!r} was trained on another dataset "
            f"(fingerprint {state.get('dataset_fingerprint')[:12]}..., this one {fp[:12]}...); "
            "use another checkpoint_dir to start over"
        )
    return state, type(model).load(ckpt)


class _ValidationRows:
    """Validation rows of one epoch's read, kept while they fit in ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.parts, self.nbytes, self.overflow = max_bytes, [], 0, False

    def add(self, index: int, X: np.ndarray, y: np.ndarray) -> None:
        if self.overflow:
            return
        self.nbytes += X.nbytes + y.nbytes
        if self.nbytes > self.max_bytes:
            self.overflow, self.parts = True, []
        else:
            self.parts.append((index, X.copy(), y.copy()))

    def in_partition_order(self) -> list[tuple[np.ndarray, np.ndarray]]:
        # Partitions arrive in the epoch's shuffled order; summing in a fixed order
        # keeps the validation loss independent of the epoch it was collected in.
        return [(X, y) for _, X, y in sorted(self.parts, key=lambda p: p[0])]


def train_out_of_core(
    model: Any,
    dataset: Any,
    *,
    epochs: int = 10,
    batch_size: int | None = None,
    split: TrainValidationSplit | None = None,
    x_scaler: Any = None,
    y_scaler: Any = None,
    random_state: int = 0,
    shuffle: bool = True,
    buffer_partitions: int = 4,
    prefetch: bool = True,
    early_stopping: bool = True,
    restore_best: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = True,
    classes: Any = None,
    validation_batch_size: int = 8192,
    validation_cache_bytes: int = 256 * 2**20,
    client: Any = None,
) -> TrainingResult:
    """Train ``model`` on ``dataset`` out of core; return a :class:`TrainingResult`.

    ``split`` sets the validation rows (none: no validation loss, early stopping on
    the training loss). ``x_scaler`` transforms features; ``y_scaler`` is handed to
    ``model.set_target_scaler`` before the first step. ``batch_size`` defaults to
    the model's. Validation rows are kept in memory after the first epoch when
    they fit in ``validation_cache_bytes``, else streamed again each epoch. The
    callback gets ``{epoch, train_loss, val_loss, learning_rate, samples_per_s,
    epoch_seconds}`` after each epoch (epoch counts from 1; epoch_seconds covers
    training and validation). Checkpoints go to ``checkpoint_dir/epoch-NNNN.npz``
    (all kept) with ``training_state.json``; with ``resume`` a rerun continues after
    the last one. Returns with the best epoch's weights when ``restore_best``.
    """
    missing = [name for name in _REQUIRED if not callable(getattr(model, name, None))]
    if missing:
        raise ValueError(
            f"{type(model).__name__} cannot be trained out of core: it has no "
            f"{', '.join(missing)} (needs {', '.join(_REQUIRED)})"
        )
    check_positive("epochs", epochs, integer=True)
    check_positive("validation_batch_size", validation_batch_size, integer=True)
    check_positive("validation_cache_bytes", validation_cache_bytes, integer=True, allow_zero=True)
    if batch_size is None:
        own = getattr(model, "batch_size", None)
        batch_size = (
            own if isinstance(own, (int, np.integer)) and not isinstance(own, bool) else 200
        )
    if callback is not None and not callable(callback):
        raise ValueError(f"callback={callback!r} is not callable")
    y_dtype = "int64" if classes is not None else None
    common = dict(
        x_scaler=x_scaler,
        client=client,
        buffer_partitions=buffer_partitions,
        prefetch=prefetch,
        y_dtype=y_dtype,
    )
    train_stream = MinibatchStream(
        dataset,
        batch_size,
        subset="train" if split is not None else "all",
        split=split,
        random_state=random_state,
        shuffle=shuffle,
        **common,
    )
    val_stream = None
    if split is not None:
        val_stream = MinibatchStream(
            dataset,
            validation_batch_size,
            subset="validation",
            split=split,
            shuffle=False,
            **common,
        )

    ckdir = None if checkpoint_dir is None else Path(checkpoint_dir)
    result = TrainingResult(model=model)
    if ckdir is not None:
        ckdir.mkdir(parents=True, exist_ok=True)
        if resume:
            state, loaded = _load_state(ckdir, model, dataset, random_state)
            if state is not None:
                model = result.model = loaded
                result.history = list(state.get("history", []))
                result.epochs_done = result.resumed_from = int(state["epochs_done"])
                result.stopped_early = bool(state.get("stopped", False))
                result.checkpoint = str(ckdir / state["checkpoint"])
    if result.resumed_from == 0 and y_scaler is not None:
        if not callable(getattr(model, "set_target_scaler", None)):
            raise ValueError(f"y_scaler given but {type(model).__name__} has no set_target_scaler")
        model.set_target_scaler(y_scaler)

    val_cache: list | None = None
    try:
        while result.epochs_done < epochs and not result.stopped_early:
            epoch = result.epochs_done
            t0 = time.perf_counter()
            collector = None
            if val_stream is not None and val_cache is None and validation_cache_bytes > 0:
                collector = _ValidationRows(validation_cache_bytes)
            # While this epoch's last group trains, the next epoch's first one is read,
            # so it is ready after validation. It needs the validation side only when
            # an earlier epoch of this call could not cache the validation rows.
            ahead = None
            if epoch + 1 < epochs:
                ahead = collector is not None and epoch > result.resumed_from
            batches = train_stream.epoch(
                epoch, collector.add if collector is not None else None, prefetch_next=ahead
            )
            n_seen, loss_sum = 0, 0.0
            for Xb, yb in batches:
                if classes is not None:
                    model.partial_fit(Xb, yb, classes=classes)
                else:
                    model.partial_fit(Xb, yb)
                batch_loss = getattr(model, "batch_loss_", None)
                if batch_loss is None:
                    batch_loss = model.data_loss(Xb, yb)
                loss_sum += float(batch_loss) * len(Xb)
                n_seen += len(Xb)
            if n_seen == 0:
                raise ValueError(
                    f"dataset {getattr(dataset, 'path', '')!r} yielded no training rows"
                )
            train_seconds = time.perf_counter() - t0
            train_loss = loss_sum / n_seen

            val_loss = None
            if val_stream is not None:
                if collector is not None and not collector.overflow:
                    val_cache = collector.in_partition_order()
                if val_cache is not None:
                    val_batches = []
                    for X, y in val_cache:
                        y1 = y[:, 0] if y.shape[1] == 1 else y
                        val_batches.extend(
                            (X[s : s + validation_batch_size], y1[s : s + validation_batch_size])
                            for s in range(0, len(X), validation_batch_size)
                        )
                else:
                    val_batches = val_stream.epoch(0)
                v_sum, v_n = 0.0, 0
                for Xv, yv in val_batches:
                    v_sum += model.data_loss(Xv, yv) * len(Xv)
                    v_n += len(Xv)
                val_loss = v_sum / v_n if v_n else None

            stop = bool(model.record_epoch(train_loss, val_loss)) and early_stopping
            result.epochs_done = epoch + 1
            seconds = time.perf_counter() - t0
            metrics = {
                "epoch": epoch + 1,
                "train_loss": float(train_loss),
                "val_loss": None if val_loss is None else float(val_loss),
                "learning_rate": float(model.learning_rate_),
                "samples_per_s": n_seen / train_seconds if train_seconds > 0 else float("inf"),
                "epoch_seconds": seconds,
            }
            result.history.append(metrics)
            result.stopped_early = stop
            if ckdir is not None:
                name = f"epoch-{epoch + 1:04d}.npz"
                model.save(ckdir / name)
                result.checkpoint = str(ckdir / name)
                _write_json_atomic(
                    ckdir / STATE_FILE,
                    {
                        "epochs_done": epoch + 1,
                        "checkpoint": name,
                        "stopped": stop,
                        "random_state": random_state,
                        "dataset_fingerprint": _fingerprint(dataset),
                        "history": result.history,
                    },
                )
            if callback is not None:
                callback(dict(metrics))
    finally:
        train_stream.close()  # drop a next epoch read ahead but not used

    if restore_best:
        model.restore_best_weights()
    return result
