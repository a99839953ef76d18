"""Resume by default: a training run continues the checkpoints its identity names.

The checkpoint directory of ``train_bp`` is derived from what determines the
result (:meth:`TrainConfig.identity`: config less the fields that do not change
the weights, dataset fingerprint, seed, nnpipe version), not from the MLflow run
id, so the same command after a kill finds the epochs the killed run finished.
``run.json`` beside the checkpoints names the MLflow run that last trained there:
when that run was left RUNNING (its process died) it is ended KILLED and tagged
with the run that continues it. ``restart`` removes the checkpoints first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nnpipe.data import storage
from nnpipe.training.state import saved_epochs

OWNER_FILE = "run.json"
RESUMED_FROM_RUN_TAG = "nnpipe.resumed_from_run"


def previous_run(directory: Path | str, storage_options: dict | None = None) -> str | None:
    """The MLflow run id that last trained in ``directory``; None if none is recorded."""
    try:
        text = storage.read_bytes(storage.join(directory, OWNER_FILE), storage_options)
        return str(json.loads(text)["run_id"])
    except storage.StorageError:
        raise
    except (OSError, ValueError, KeyError, TypeError):
        return None


def take_over(
    directory: Path | str,
    run_id: str,
    tracker: Any,
    *,
    restart: bool,
    keep: int,
    storage_options: dict | None = None,
) -> int:
    """Make ``run_id`` the run training in ``directory``; return the epochs it resumes from.

    Logs ``resumed_from`` (epochs already done) and where the checkpoints are as the
    run's parameters; the run left behind by a killed process is ended KILLED.
    """
    previous = previous_run(directory, storage_options)
    if restart:
        storage.remove_tree(directory, storage_options)
    resumed_from = saved_epochs(directory, storage_options)
    if previous is not None and previous != run_id:
        tracker.end_abandoned(previous, continued_by=run_id)
        if resumed_from:
            tracker.set_tags({RESUMED_FROM_RUN_TAG: previous})
    storage.makedirs(directory)
    text = json.dumps({"run_id": run_id}).encode("utf-8")
    storage.write_bytes(storage.join(directory, OWNER_FILE), text, storage_options)
    tracker.log_params(
        {
            "resumed_from": resumed_from,
            "checkpoints": {"dir": str(directory), "keep_last": keep, "keep_best": True},
        }
    )
    return resumed_from
