"""Data-parallel training of one network on Dask workers: placement, rounds, averaging.

The Dask side of training, in one place (the tasks themselves are NumPy only,
in :mod:`nnpipe.training.shares`):

- Placement: the training partitions are dealt to the workers by row count
  (largest first onto the least-loaded worker). Every task of a share is pinned
  to its worker and may run elsewhere (``allow_other_workers``); a worker reads
  only its share's partitions, a few at a time, each once per epoch (a group of
  ``buffer_partitions`` shuffled together, as the single-process stream does), so
  a worker's memory does not grow with the dataset.
- Rounds: each round every worker trains H minibatches of its share from the
  driver's parameters and optimizer state (one ordinary task, placed by Dask
  on the share's worker) and returns its parameters and optimizer moments with its
  sample count; the driver averages them weighted by samples. H = 1 is
  synchronous data-parallel SGD (with SGD, N workers of batch b step exactly as
  one process with batch N*b); H > 1 is local SGD. The first ``warmup_epochs``
  use H = 1 ("post-local SGD", Lin et al. 2020).
- Faults: a task lost with its worker is run again by Dask from its inputs
  (state, share, epoch; the rows are read again from storage), so a worker loss costs at most
  the round it interrupted, and the result is the same. Actors and scattered
  data, which die with their worker, are not used.

Epochs end as in one process, through the same :class:`Trainer`: validation
loss (computed on the workers' validation rows), early stopping, a checkpoint
in ``checkpoint_dir`` in the single-process format, the epoch callback.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from nnpipe.core.validation import check_positive
from nnpipe.data.compute import local_cluster_config
from nnpipe.data.split import TrainValidationSplit

from .placement import (
    auto_local_steps,
    balance_partitions,
    check_options,
    layer_widths,
    make_shares,
)
from .shares import Share, Source, check_share, run_round, validate
from .trainer import Trainer, TrainingResult, _default_batch_size

DEFAULT_LOCAL_STEPS = "auto"
DEFAULT_WARMUP_EPOCHS = 0
DEFAULT_WORKER_TIMEOUT = 60.0


def choose_workers(client: Any, n_workers: int, timeout: float) -> list[str]:
    """Addresses of ``n_workers`` workers of ``client``'s cluster, waiting up to ``timeout`` s."""
    try:
        client.wait_for_workers(n_workers, timeout=timeout)
    except TimeoutError:
        have = len(alive_workers(client))
        raise ValueError(
            f"workers={n_workers} but the Dask cluster at {client.scheduler.address} has "
            f"{have} worker(s) after waiting {timeout:g} s; start more workers or use "
            f"workers <= {have}"
        ) from None
    return sorted(alive_workers(client))[:n_workers]


def alive_workers(client: Any) -> set[str]:
    """Addresses of the workers the scheduler knows right now."""
    return set(client.scheduler_info(n_workers=-1)["workers"])


def average(results: list[dict[str, Any]], t_before: int) -> tuple[dict, dict]:
    """The workers' models averaged, weighted by samples: parameters and optimizer moments."""
    done = [r for r in results if r["n"]]
    total = sum(r["n"] for r in done)
    arrays, meta = dict(done[0]["arrays"]), copy.deepcopy(done[0]["meta"])
    for name, first in done[0]["arrays"].items():
        if name == "params" or name.startswith("opt_"):
            acc = np.zeros(first.shape, np.float64)
            for r in done:
                acc += r["arrays"][name] * (r["n"] / total)
            arrays[name] = acc.astype(first.dtype, copy=False)
    meta["optimizer"]["t"] = max(int(r["meta"]["optimizer"]["t"]) for r in done)
    meta["t_"] = t_before + total
    return arrays, meta


@contextlib.contextmanager
def _client_for(client: Any, n_workers: int) -> Iterator[Any]:
    """``client``, else a local cluster of ``n_workers`` single-threaded processes."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    # Processes, not threads: a minibatch step spends much of its time in Python,
    # which threads of one process would take turns at.
    with (
        local_cluster_config(),
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as own,
    ):
        yield own


def _same(value: Any) -> Any:
    return value


class _Cluster:
    """The workers, their shares and the tasks of one run's rounds."""

    def __init__(self, client: Any, addresses: list[str], shares: list[Share], source: Source):
        self.client, self.addresses, self.shares, self.source = client, addresses, shares, source
        self.run = source.run
        # The source (the dataset's file list and schema: ~2 KB a partition) goes to
        # the cluster once, as a task result the rounds depend on, not in every task:
        # sent with each round it grew the driver by ~3 MB a round on 100 partitions.
        # Being a task, it is computed again if the worker holding it dies.
        self.source_ref = client.submit(_same, source, key=f"nnpipe-source-{self.run}", pure=False)
        # Each worker opens its share here: a path the workers cannot see fails now.
        client.gather(
            [
                self.submit(
                    check_share,
                    self.source_ref,
                    share,
                    name="check",
                    w=w,
                    pure=False,
                    allow_other_workers=False,
                )  # fmt: skip
                for w, share in enumerate(shares)
            ]
        )
        self.rows = [share.n_rows for share in shares]
        self._asked, self._lost = -math.inf, []

    def submit(self, fn: Callable, *args: Any, name: str, w: int, **kw: Any) -> Any:
        """``fn`` as the task of share ``w``: on its worker, elsewhere if that worker died."""
        return self.client.submit(
            fn, *args, key=f"nnpipe-{name}-{self.run}-{w}", workers=[self.addresses[w]],
            **{"allow_other_workers": True, **kw},
        )  # fmt: skip

    def lost(self, max_age: float = 0.0) -> list[str]:
        """The run's workers the scheduler no longer knows, asked at most every ``max_age`` s."""
        now = time.monotonic()
        if now - self._asked >= max_age:
            # One scheduler round trip: costly per round on a busy machine.
            alive, self._asked = alive_workers(self.client), now
            self._lost = [a for a in self.addresses if a not in alive]
        return self._lost


class DataParallel:
    """Rounds of local steps on the workers, averaged in the driver; epochs by a Trainer.

    ``round_callback(metrics)`` gets per round ``round``, ``round_train_loss``,
    ``round_samples_per_s``, ``round_compute_seconds`` (slowest worker's task),
    ``round_communication_seconds`` (the rest of the round) and ``workers_alive``;
    the trainer's epoch callback also ``workers``, ``workers_alive``,
    ``workers_lost``, ``local_steps``, ``compute_seconds`` and
    ``communication_seconds``.
    """

    def __init__(
        self, trainer: Trainer, cluster: _Cluster, batch_size: int, local_steps: int,
        warmup_epochs: int, round_callback: Callable | None,
    ) -> None:  # fmt: skip
        self.trainer, self.cluster, self.batch_size = trainer, cluster, batch_size
        self.local_steps, self.warmup_epochs = local_steps, warmup_epochs
        self.round_callback = round_callback
        self.rounds_done = 0
        self.workers_lost: list[str] = []

    def state(self) -> Any:
        """What the tasks start from: the unfitted model, or the fitted one's arrays."""
        model = self.trainer.model
        return model.to_arrays() if hasattr(model, "_params") else model

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Rounds over every worker's share; the averaged model becomes the trainer's."""
        c, b, trainer = self.cluster, self.batch_size, self.trainer
        steps = self.local_steps if epoch >= self.warmup_epochs else 1
        n_batches = [math.ceil(n / b) for n in c.rows]
        state, kind = self.state(), type(trainer.model)
        totals = {"loss_sum": 0.0, "n": 0, "correct": 0, "compute": 0.0, "wall": 0.0}
        for first in range(0, max(n_batches), steps):
            started = time.perf_counter()
            futures = [
                c.submit(
                    run_round,
                    state,
                    kind,
                    c.source_ref,
                    c.shares[w],
                    epoch,
                    first,
                    steps,
                    b,
                    trainer.classes,
                    name=f"round-{epoch}-{first}",
                    w=w,
                )  # fmt: skip
                for w in range(len(c.shares))
                if first < n_batches[w]
            ]
            results = c.client.gather(futures)
            t_before = 0 if not isinstance(state, tuple) else int(state[1]["t_"])
            state = average(results, t_before)
            self._end_round(results, time.perf_counter() - started, totals)
        trainer.model = kind.from_arrays(*state)
        return totals

    def _end_round(self, results: list[dict], wall: float, totals: dict) -> None:
        n = sum(r["n"] for r in results)
        compute = max(r["seconds"] for r in results)
        loss_sum = sum(r["loss_sum"] for r in results)
        totals["loss_sum"] += loss_sum
        totals["n"] += n
        totals["correct"] += sum(r["correct"] for r in results)
        totals["compute"] += compute
        totals["wall"] += wall
        self.rounds_done += 1
        lost = self.cluster.lost(max_age=1.0)
        self.workers_lost += [a for a in lost if a not in self.workers_lost]
        if self.round_callback is not None:
            self.round_callback(
                {
                    "round": self.rounds_done,
                    "round_train_loss": loss_sum / n,
                    "round_samples_per_s": n / wall if wall > 0 else float("inf"),
                    "round_compute_seconds": compute,
                    "round_communication_seconds": max(wall - compute, 0.0),
                    "workers_alive": len(self.cluster.addresses) - len(lost),
                }
            )

    def validation(self, epoch: int) -> tuple[float | None, float | None]:
        """(validation loss, accuracy or None) of the trainer's model on the workers' rows.

        Each epoch's tasks have keys of their own: a key still held from the last
        epoch would hand back that epoch's result.
        """
        c = self.cluster
        if c.source.split is None:
            return None, None
        state, kind = self.trainer.model.to_arrays(), type(self.trainer.model)
        parts = c.client.gather(
            [
                c.submit(
                    validate,
                    state,
                    kind,
                    c.source_ref,
                    s,
                    self.trainer.classes,
                    name=f"val-{epoch}",
                    w=w,
                )  # fmt: skip
                for w, s in enumerate(c.shares)
            ]
        )
        n = sum(p[1] for p in parts)
        if n == 0:
            return None, None
        accuracy = sum(p[2] for p in parts) / n if self.trainer.classes is not None else None
        return sum(p[0] for p in parts) / n, accuracy

    def fit(self, epochs: int) -> None:
        """Epochs until ``epochs`` are done or early stopping ends the run."""
        trainer = self.trainer
        while trainer.state.epochs_done < epochs and not trainer.state.stopped:
            epoch = trainer.state.epochs_done
            started = time.perf_counter()
            totals = self.train_epoch(epoch)
            if totals["n"] == 0:
                raise ValueError("the workers' shares hold no training rows")
            val_loss, val_accuracy = self.validation(epoch)
            accuracy = None
            if trainer.classes is not None:
                accuracy = (totals["correct"] / totals["n"], val_accuracy)
            wall = totals["wall"]
            extra = {
                "workers": len(self.cluster.addresses),
                "workers_alive": len(self.cluster.addresses) - len(self.cluster.lost()),
                "workers_lost": len(self.workers_lost),
                "local_steps": self.local_steps if epoch >= self.warmup_epochs else 1,
                "compute_seconds": totals["compute"],
                "communication_seconds": max(wall - totals["compute"], 0.0),
            }
            speed = totals["n"] / wall if wall > 0 else float("inf")
            train_loss = totals["loss_sum"] / totals["n"]
            trainer.end_epoch(train_loss, val_loss, speed, started, accuracy, extra)


def _same_start(model: Any, y_scaler: Any, dataset: Any, split: Any, client: Any) -> None:
    """Make every worker start from one network: a fixed seed and one target scaler.

    Each worker initialises the unfitted model itself; with an int ``random_state``
    they draw the same weights. A regressor that would fit its target scaler on
    its first batch gets one fitted on all training rows instead.
    """
    if hasattr(model, "_params"):
        return  # already trained: the workers start from its arrays
    seed = getattr(model, "random_state", 0)
    if not isinstance(seed, (int, np.integer)):
        model.set_params(random_state=int(np.random.default_rng(seed).integers(2**31)))
    if y_scaler is None and getattr(model, "target_scaling", None) is not None:
        from nnpipe.data.scaling import fit_scalers

        _, y_scaler = fit_scalers(
            dataset, None, model.target_scaling, subset="train" if split else "all",
            split=split, client=client,
        )  # fmt: skip
    if y_scaler is not None:
        if not callable(getattr(model, "set_target_scaler", None)):
            raise ValueError(f"y_scaler given but {type(model).__name__} has no set_target_scaler")
        model.set_target_scaler(y_scaler)


def _scale_rate(model: Any, factor: int) -> None:
    """A new model's learning rate times ``factor`` (the linear scaling rule)."""
    if factor != 1 and not hasattr(model, "_params"):
        model.set_params(learning_rate_init=model.learning_rate_init * factor)


def _source(
    dataset: Any, split: Any, x_scaler: Any, model: Any, classes: Any, random_state: int,
    shuffle: bool, buffer_partitions: int,
) -> Source:  # fmt: skip
    """How each worker reads its share: rows, scaling and dtypes as one process would."""
    return Source(
        dataset=dataset,
        split=split,
        x_scaler=x_scaler,
        dtype=getattr(model, "dtype", "float32"),
        y_dtype=np.int64 if classes is not None else np.float64,
        run=uuid.uuid4().hex[:8],
        random_state=random_state,
        shuffle=shuffle,
        group=buffer_partitions,
    )


def train_distributed(
    model: Any,
    dataset: Any,
    *,
    workers: int = 2,
    client: Any = None,
    local_steps: int | str = DEFAULT_LOCAL_STEPS,
    warmup_epochs: int = DEFAULT_WARMUP_EPOCHS,
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT,
    epochs: int = 10,
    batch_size: int | None = None,
    split: TrainValidationSplit | None = None,
    x_scaler: Any = None,
    y_scaler: Any = None,
    random_state: int = 0,
    shuffle: bool = True,
    buffer_partitions: int = 4,
    early_stopping: bool = True,
    restore_best: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    round_callback: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    keep_checkpoints: int | None = None,
    resume: bool = True,
    classes: Any = None,
    scale_learning_rate: bool = True,
) -> TrainingResult:
    """Train ``model`` on ``dataset`` across ``workers`` Dask workers; a :class:`TrainingResult`.

    As :func:`~nnpipe.training.train_out_of_core` (same checkpoints, resume rules,
    callback metrics) with: ``batch_size`` per worker (a synchronous round steps
    on ``workers * batch_size`` rows); ``local_steps`` (H) minibatches per worker
    between averagings (``"auto"``: see :func:`auto_local_steps`; the result's
    ``local_steps`` says which), H = 1 during the first ``warmup_epochs``; ``client`` a
    ``distributed.Client`` (None: a local cluster of ``workers`` processes);
    ``worker_timeout`` seconds to wait for the cluster to have ``workers``.
    ``scale_learning_rate``: a new model's ``learning_rate_init`` is multiplied by
    ``workers`` (the linear scaling rule for a batch ``workers`` times larger,
    Goyal et al. 2017); without it the run equals, for H = 1 and SGD, one process
    with batch ``workers * batch_size`` and the same learning rate.
    ``buffer_partitions``: partitions a worker shuffles together. The round and
    epoch metrics the callbacks get are listed in :class:`DataParallel`.
    """
    check_options(workers, local_steps, warmup_epochs, worker_timeout, epochs, buffer_partitions)
    batch_size = _default_batch_size(model) if batch_size is None else batch_size
    check_positive("batch_size", batch_size, integer=True)
    counts = dataset.partition_row_counts("train" if split is not None else "all", split)
    placed = balance_partitions(counts, workers, getattr(dataset, "path", ""))
    trainer = Trainer(
        model, random_state=random_state, dataset_fingerprint=getattr(dataset, "fingerprint", None),
        classes=classes, early_stopping=early_stopping, callback=callback,
        checkpoint_dir=checkpoint_dir, keep_checkpoints=keep_checkpoints,
        storage_options=getattr(dataset, "storage_options", None),  # for a checkpoint URL
    )  # fmt: skip
    if resume:
        trainer.resume()
    with _client_for(client, workers) as client:
        if trainer.resumed_from == 0:
            _same_start(trainer.model, y_scaler, dataset, split, client)
            _scale_rate(trainer.model, workers if scale_learning_rate else 1)
        addresses = choose_workers(client, workers, worker_timeout)
        shares = make_shares(placed, counts, addresses)
        if local_steps == "auto":
            layers = layer_widths(trainer.model, dataset, classes)
            local_steps = auto_local_steps(layers, batch_size, max(s.n_rows for s in shares))
        source = _source(
            dataset, split, x_scaler, model, classes, trainer.state.random_state, shuffle,
            buffer_partitions,
        )  # fmt: skip
        runner = DataParallel(
            trainer, _Cluster(client, addresses, shares, source), batch_size, local_steps,
            warmup_epochs, round_callback,
        )  # fmt: skip
        runner.fit(epochs)
    if restore_best:
        trainer.model.restore_best_weights()
    result = trainer.result()
    result.workers, result.workers_lost = workers, len(runner.workers_lost)
    result.local_steps = local_steps
    return result
