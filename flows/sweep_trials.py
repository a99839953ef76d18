"""A sweep's trials: where each lives, how one trains on a worker, and how they are scheduled.

Every trial has a directory derived from the sweep's identity and its own
parameters (``<workdir>/sweeps/<sweep id>/trial-<hash>``) holding its
checkpoints, one ``result-eNNNN.json`` per epoch budget it finished, the model
file of each, and ``attempts.jsonl`` (one line per time its training started).

A trial is one ordinary Dask task running the same code as ``nnpipe train``
(``train_network``, then the flow's evaluation), reading its partitions on the
worker. It is idempotent through its directory: a finished budget is read back,
never trained again, and an unfinished one continues after its last checkpoint.
That is what makes a lost worker cheap, and what guards against a scheduler or
Prefect running a finished task again (prefect#15442): retries and re-runs are
not trusted to happen exactly once, the files are.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.config import TrainConfig
from flows.sweep_config import SweepConfig, digest, identity_of
from nnpipe.core.serialization import atomic_write
from nnpipe.core.threads import blas_threads, usable_cores

ATTEMPTS_FILE = "attempts.jsonl"
STATE_FILE = "training_state.json"  # the Trainer's, in the checkpoints directory


@dataclass(frozen=True)
class Trial:
    """One configuration of a sweep: its number, swept values, full config and directory."""

    number: int
    params: dict[str, Any]
    config: TrainConfig
    directory: Path

    @property
    def trial_id(self) -> str:
        return self.directory.name

    def result_path(self, budget: int) -> Path:
        return self.directory / f"result-e{budget:04d}.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.directory / "checkpoints"


def make_trials(sweep: SweepConfig) -> list[Trial]:
    """The sweep's trials in order; equal configurations share one trial."""
    trials: list[Trial] = []
    seen: set[str] = set()
    root = sweep.sweep_dir.absolute()
    for params in sweep.trial_params():
        config = sweep.trial_config(params)
        directory = root / f"trial-{digest(identity_of(config))}"
        if directory.name in seen:
            continue
        seen.add(directory.name)
        trials.append(Trial(len(trials), params, config, directory))
    return trials


def finished_result(trial: Trial, budget: int) -> dict[str, Any] | None:
    """The stored result of ``trial`` trained to ``budget`` epochs, None when not finished."""
    path = trial.result_path(budget)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def epochs_checkpointed(trial: Trial) -> int:
    """Epochs the trial's last checkpoint holds (0 when it has none)."""
    path = trial.checkpoint_dir / STATE_FILE
    if not path.is_file():
        return 0
    return int(json.loads(path.read_text()).get("epochs_done", 0))


def attempts(trial: Trial) -> list[dict[str, Any]]:
    """Each time the trial's training started: budget, epoch it started from, host and pid."""
    path = trial.directory / ATTEMPTS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _record_attempt(trial: Trial, budget: int) -> None:
    trial.directory.mkdir(parents=True, exist_ok=True)
    line = {
        "budget": budget,
        "from_epoch": epochs_checkpointed(trial),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": time.time(),
    }
    with open(trial.directory / ATTEMPTS_FILE, "a") as fh:
        fh.write(json.dumps(line) + "\n")


def _slot_threads() -> int:
    """BLAS threads a trial may use: its worker's cores shared among the worker's task slots.

    Each worker thread runs one trial at a time; without this cap two trials on a
    two-thread worker could each ask for both cores (the network picks its own BLAS
    threads by layer size and idle cores) and slow each other down.
    """
    from distributed import get_worker

    try:
        slots = get_worker().state.nthreads
    except ValueError:  # not inside a Dask task
        return usable_cores()
    return max(1, usable_cores() // max(1, slots))


def run_trial(
    trial: Trial, budget: int, scalers: tuple[Any, Any], classes: Any = None
) -> dict[str, Any]:
    """Train ``trial`` to ``budget`` epochs (continuing its checkpoints), evaluate, store.

    Runs inside a Dask task: the dataset is opened and read here, on the worker.
    A budget already finished is read back without training.
    """
    done = finished_result(trial, budget)
    if done is not None:
        return done
    from flows import train_bp  # Prefect and the training stack, loaded on the worker

    config = trial.config
    _record_attempt(trial, budget)
    dataset = train_bp.open_dataset.fn(config)
    if classes is not None:
        dataset.set_classes(classes)
    split = train_bp.make_split(config)
    start = time.perf_counter()
    with blas_threads(_slot_threads()):
        result = train_bp.train_network(
            config, dataset, split, scalers, None, trial.checkpoint_dir, epochs=budget
        )
    train_seconds = time.perf_counter() - start
    model = result.model
    if classes is not None:
        train_bp.with_labels(model, dataset.classes)
    trained = train_bp.TrainedModel(model, scalers[0], dataset.feature_names, dataset.target_names)
    if classes is None:
        metrics, _ = train_bp.evaluate.fn(trained, dataset, split)
    else:
        metrics, _, _ = train_bp.evaluate_classifier.fn(trained, dataset, split)
    model_path = train_bp.save_model(trained, trial.directory / f"e{budget:04d}")
    out = {
        "trial_id": trial.trial_id,
        "number": trial.number,
        "params": trial.params,
        "budget": budget,
        "epochs": result.epochs_done,
        "stopped_early": result.stopped_early,
        "resumed_from": result.resumed_from,
        "val_loss": float(model.best_loss_),
        "metrics": metrics,
        "history": result.history,
        "model_path": str(model_path),
        "train_seconds": train_seconds,
    }
    text = json.dumps(out, indent=1, default=float).encode()
    atomic_write(trial.result_path(budget), lambda fh: fh.write(text))
    return out


def run_trials(
    client: Any,
    trials: Iterable[Trial],
    budget: int,
    inputs: Callable[[str], tuple[tuple[Any, Any], Any]],
    on_result: Callable[[Trial, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Train ``trials`` to ``budget`` as Dask tasks, one per worker thread; results by trial id.

    ``inputs(trial_id)`` gives a trial's ((x_scaler, y_scaler), classes or None).

    Trials already finished are read here and not submitted. Each result is
    handed to ``on_result`` as it arrives and its future released at once, so a
    worker lost later holds no finished result the scheduler would recompute.
    """
    from distributed import as_completed

    results: dict[str, dict[str, Any]] = {}
    by_key: dict[str, Trial] = {}
    futures = []
    for trial in trials:
        done = finished_result(trial, budget)
        if done is not None:
            results[trial.trial_id] = {**done, "reused": True}
            if on_result is not None:
                on_result(trial, results[trial.trial_id])
            continue
        key = f"nnpipe-trial-{trial.trial_id}-e{budget}-{uuid.uuid4().hex[:8]}"
        by_key[key] = trial
        scalers, classes = inputs(trial.trial_id)
        futures.append(
            client.submit(run_trial, trial, budget, scalers, classes, key=key, pure=False)
        )
    for future in as_completed(futures):
        trial = by_key[future.key]
        result = {**future.result(), "reused": False}
        future.release()
        results[trial.trial_id] = result
        if on_result is not None:
            on_result(trial, result)
    return results
