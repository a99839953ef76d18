"""The training loop: epochs of minibatches into a model's ``partial_fit``.

The model is used only through its contract: ``partial_fit``, ``data_loss``,
``record_epoch``, ``restore_best_weights``, ``save`` / ``load`` and
``learning_rate_`` (and ``set_target_scaler`` when a target scaler is given).

A :class:`Trainer` does not know where batches come from: :meth:`Trainer.train_epoch`
takes any iterable of (X, y), so the same object trains from a local stream or
from a worker's partitions inside a Dask task. Its state is the model plus a
:class:`~nnpipe.training.state.TrainingState`, saved to and loaded from a
checkpoint directory; nothing lives in module globals.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from nnpipe.core.validation import check_positive
from nnpipe.data import storage
from nnpipe.data.split import TrainValidationSplit

from .state import TrainingState
from .streams import EpochStreams

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
    workers: int = 1  # Dask workers that trained it (1: one process)
    workers_lost: int = 0  # workers that died during the run
    local_steps: int | None = None  # H of distributed training (None: one process)
    best_checkpoint: str | None = None  # the lowest-loss epoch's checkpoint


class Trainer:
    """Trains ``model`` epoch by epoch: early stopping, checkpoints, a per-epoch callback.

    ``random_state`` and ``dataset_fingerprint`` identify the run in its
    checkpoints (a resume with other values is refused). ``classes`` goes to every
    ``partial_fit`` (classifiers). ``early_stopping`` False records the epochs but
    never stops. ``callback(metrics)`` runs after each epoch. With
    ``checkpoint_dir`` every epoch is saved there (created when missing).
    """

    def __init__(
        self,
        model: Any,
        *,
        random_state: int = 0,
        dataset_fingerprint: str | None = None,
        classes: Any = None,
        early_stopping: bool = True,
        callback: Callable[[dict[str, Any]], None] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        keep_checkpoints: int | None = None,
        storage_options: dict | None = None,
    ) -> None:
        missing = [name for name in _REQUIRED if not callable(getattr(model, name, None))]
        if missing:
            raise ValueError(
                f"{type(model).__name__} cannot be trained out of core: it has no "
                f"{', '.join(missing)} (needs {', '.join(_REQUIRED)})"
            )
        if callback is not None and not callable(callback):
            raise ValueError(f"callback={callback!r} is not callable")
        self.model = model
        self.classes = classes
        self.early_stopping = early_stopping
        self.callback = callback
        self.checkpoint_dir = None
        if checkpoint_dir is not None:
            url = storage.is_url(checkpoint_dir)
            self.checkpoint_dir = os.fspath(checkpoint_dir) if url else Path(checkpoint_dir)
        self.storage_options = storage_options
        self.state = TrainingState(
            random_state=random_state,
            dataset_fingerprint=dataset_fingerprint,
            keep_last=keep_checkpoints,
        )
        self.resumed_from = 0  # epochs already done when this trainer started

    def resume(self) -> bool:
        """Load the model and state saved in ``checkpoint_dir``; False when there are none."""
        if self.checkpoint_dir is None:
            return False
        model = self.state.load(self.checkpoint_dir, type(self.model), self.storage_options)
        if model is None:
            return False
        self.model = model
        self.resumed_from = self.state.epochs_done
        return True

    def train_epoch(
        self,
        batches: Iterable[tuple[Any, Any]],
        steps: int | None = None,
        counts: list[int] | None = None,
    ) -> tuple[float, int]:
        """``partial_fit`` on each (X, y) of ``batches`` (the first ``steps`` only when given).

        Returns (loss sum, sample count): the sum of each batch's loss times its
        rows, so losses from several workers add up before the one division. With
        ``counts`` (a list [right, rows]) a classifier's rows classified right by
        the forward pass of their step (``batch_correct_``; else by ``predict``
        after it), and the rows, are added to it.
        """
        model = self.model
        options = {} if self.classes is None else {"classes": self.classes}
        loss_sum, n_seen = 0.0, 0
        for Xb, yb in islice(batches, steps):
            model.partial_fit(Xb, yb, **options)
            # The loss of the batch as trained on, from the forward pass partial_fit
            # already made, when the model keeps it; else one more forward pass.
            batch_loss = getattr(model, "batch_loss_", None)
            if batch_loss is None:
                batch_loss = model.data_loss(Xb, yb)
            loss_sum += float(batch_loss) * len(Xb)
            n_seen += len(Xb)
            if counts is not None:
                # As the loss: from the forward pass of the step when the model keeps it.
                correct = getattr(model, "batch_correct_", None)
                if correct is None:
                    correct = np.count_nonzero(model.predict(Xb) == yb)
                counts[0] += int(correct)
                counts[1] += len(Xb)
        return loss_sum, n_seen

    def validation_loss(
        self, batches: Iterable[tuple[Any, Any]], counts: list[int] | None = None
    ) -> float | None:
        """Mean data loss of the current weights over ``batches``; None when they hold no rows.

        With ``counts`` (a list [right, rows]) a classifier's rows predicted right, and
        the rows, are added to it (loss and count from one forward pass per batch).
        """
        v_sum, v_n = 0.0, 0
        for Xv, yv in batches:
            if counts is None:
                loss = self.model.data_loss(Xv, yv)
            else:
                loss, right = self.model.loss_and_correct(Xv, yv)
                counts[0] += right
                counts[1] += len(Xv)
            v_sum += loss * len(Xv)
            v_n += len(Xv)
        return v_sum / v_n if v_n else None

    def end_epoch(
        self,
        train_loss: float,
        val_loss: float | None,
        samples_per_s: float,
        started: float,
        accuracy: tuple[float, float | None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Book-keep a finished epoch (early stopping, history, checkpoint, callback).

        ``started`` is the epoch's ``time.perf_counter()`` start; ``accuracy`` the
        (training, validation) accuracy of a classifier, added to the metrics as
        ``train_accuracy`` / ``val_accuracy``; ``extra`` more metrics of the epoch.
        Returns the epoch's metrics.
        """
        val_score = None if accuracy is None else accuracy[1]
        recorded = self.model.record_epoch(train_loss, val_loss, val_score)
        stop = bool(recorded) and self.early_stopping
        self.state.epochs_done += 1
        metrics = {
            "epoch": self.state.epochs_done,
            "train_loss": float(train_loss),
            "val_loss": None if val_loss is None else float(val_loss),
            "learning_rate": float(self.model.learning_rate_),
            "samples_per_s": samples_per_s,
            "epoch_seconds": time.perf_counter() - started,
        }
        if accuracy is not None:
            metrics["train_accuracy"], metrics["val_accuracy"] = accuracy
        metrics.update(extra or {})
        self.state.history.append(metrics)
        self.state.stopped = stop
        self.checkpoint()
        self.notify(metrics)
        return metrics

    def checkpoint(self) -> Path | None:
        """Save the model and state to ``checkpoint_dir``; return the weights file, if saved."""
        if self.checkpoint_dir is None:
            return None
        storage.makedirs(self.checkpoint_dir)
        return self.state.save(self.checkpoint_dir, self.model, self.storage_options)

    def notify(self, metrics: dict[str, Any]) -> None:
        """Hand the callback a copy of the epoch's metrics (it may keep or change it)."""
        if self.callback is not None:
            self.callback(dict(metrics))

    def fit(self, streams: EpochStreams, epochs: int) -> None:
        """Train epochs from ``streams`` until ``epochs`` are done or early stopping ends it."""
        try:
            while self.state.epochs_done < epochs and not self.state.stopped:
                epoch = self.state.epochs_done
                started = time.perf_counter()
                batches = streams.training_batches(epoch, another_follows=epoch + 1 < epochs)
                scored = self.classes is not None  # a classifier: accuracy as well
                train_ok, val_ok = ([0, 0], [0, 0]) if scored else (None, None)
                loss_sum, n_seen = self.train_epoch(batches, counts=train_ok)
                if n_seen == 0:
                    raise ValueError(f"dataset {streams.source!r} yielded no training rows")
                train_seconds = time.perf_counter() - started
                validation = streams.validation_batches()
                val_loss = None
                if validation is not None:
                    val_loss = self.validation_loss(validation, counts=val_ok)
                speed = n_seen / train_seconds if train_seconds > 0 else float("inf")
                accuracy = None
                if scored:
                    val_accuracy = val_ok[0] / val_ok[1] if val_ok[1] else None
                    accuracy = (train_ok[0] / n_seen, val_accuracy)
                self.end_epoch(loss_sum / n_seen, val_loss, speed, started, accuracy)
        finally:
            streams.close()

    def result(self) -> TrainingResult:
        """The model and what was done, as :func:`train_out_of_core` returns it."""
        state = self.state
        checkpoint = best = None
        if self.checkpoint_dir is not None and state.checkpoint is not None:
            checkpoint = str(storage.join(self.checkpoint_dir, state.checkpoint))
            best = str(storage.join(self.checkpoint_dir, state.best_checkpoint or state.checkpoint))
        return TrainingResult(
            model=self.model,
            history=state.history,
            stopped_early=state.stopped,
            epochs_done=state.epochs_done,
            resumed_from=self.resumed_from,
            checkpoint=checkpoint,
            best_checkpoint=best,
        )


def _default_batch_size(model: Any) -> int:
    own = getattr(model, "batch_size", None)
    return own if isinstance(own, (int, np.integer)) and not isinstance(own, bool) else 200


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
    keep_checkpoints: int | None = None,
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
    training and validation); with ``classes`` (a classifier) also
    ``train_accuracy`` (each batch as its step classified it, like ``train_loss``)
    and ``val_accuracy`` (None without validation rows).
    Checkpoints go to ``checkpoint_dir/epoch-NNNN.npz`` (the last ``keep_checkpoints``
    and the best kept; None keeps all) with ``training_state.json``; with ``resume`` a
    rerun continues after the last one.
    Returns with the best epoch's weights when ``restore_best``.
    """
    trainer = Trainer(
        model,
        random_state=random_state,
        dataset_fingerprint=getattr(dataset, "fingerprint", None),
        classes=classes,
        early_stopping=early_stopping,
        callback=callback,
        checkpoint_dir=checkpoint_dir,
        keep_checkpoints=keep_checkpoints,
        # A checkpoint_dir URL is reached with the dataset's fsspec options.
        storage_options=getattr(dataset, "storage_options", None),
    )
    check_positive("epochs", epochs, integer=True)
    check_positive("validation_batch_size", validation_batch_size, integer=True)
    check_positive("validation_cache_bytes", validation_cache_bytes, integer=True, allow_zero=True)
    streams = EpochStreams(
        dataset,
        _default_batch_size(model) if batch_size is None else batch_size,
        split=split,
        validation_batch_size=validation_batch_size,
        validation_cache_bytes=validation_cache_bytes,
        random_state=random_state,
        shuffle=shuffle,
        x_scaler=x_scaler,
        client=client,
        buffer_partitions=buffer_partitions,
        prefetch=prefetch,
        y_dtype="int64" if classes is not None else None,
    )
    if resume:
        trainer.resume()
    if trainer.resumed_from == 0 and y_scaler is not None:
        if not callable(getattr(model, "set_target_scaler", None)):
            raise ValueError(f"y_scaler given but {type(model).__name__} has no set_target_scaler")
        model.set_target_scaler(y_scaler)
    trainer.fit(streams, epochs)
    if restore_best:
        trainer.model.restore_best_weights()
    return trainer.result()
