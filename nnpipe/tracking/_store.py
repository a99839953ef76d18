"""The MLflow calls behind ``MlflowTracker``, as plain functions of plain arguments.

``MlflowTracker`` calls them in the caller's process, synchronously; this is the
only module of the tracker that imports MLflow, so importing the tracker stays
cheap until the first call. Each function takes the tracking URI first; one
``MlflowClient`` per URI and process is kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode

from .base import (
    ERROR_TAG,
    MAX_TAG_VALUE_LENGTH,
    TRACEBACK_ARTIFACT,
    LoggedModel,
    ValidationScore,
)

# (key, value, timestamp_ms, step) / (key, value): metric rows and param/tag pairs.
MetricRow = tuple[str, float, int, int]
Pair = tuple[str, str]

_clients: dict[str, MlflowClient] = {}


def client(uri: str) -> MlflowClient:
    """The ``MlflowClient`` of ``uri`` (one per URI and process)."""
    found = _clients.get(uri)
    if found is None:
        found = _clients[uri] = MlflowClient(tracking_uri=uri)
    return found


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"


def experiment_id(uri: str, name: str, artifact_root: str | None) -> str:
    """Id of experiment ``name``, created under ``<artifact_root>/<name>`` when missing."""
    mlflow_client = client(uri)
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise ValueError(
                f"experiment {name!r} is deleted in {uri}; "
                "restore it in the MLflow UI or choose another experiment_name"
            )
        return found.experiment_id
    location = None
    if artifact_root is not None:
        location = f"{artifact_root.rstrip('/')}/{_slug(name)}"
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except MlflowException as exc:
        # Another process created it between our lookup and our create.
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        return mlflow_client.get_experiment_by_name(name).experiment_id


def create_run(uri: str, experiment: str, run_name: str | None, tags: dict[str, str]) -> str:
    """Create a run (tags included, one round trip) and return its id."""
    return client(uri).create_run(experiment, run_name=run_name, tags=tags).info.run_id


def run_experiment(uri: str, run_id: str) -> tuple[str, str]:
    """``(experiment_id, experiment_name)`` of an existing run; fails clearly on an unknown id."""
    mlflow_client = client(uri)
    experiment = mlflow_client.get_run(run_id).info.experiment_id
    return experiment, mlflow_client.get_experiment(experiment).name


def log_batch(
    uri: str,
    run_id: str,
    metrics: Sequence[MetricRow] = (),
    params: Sequence[Pair] = (),
    tags: Sequence[Pair] = (),
) -> None:
    """Send metrics, params and tags in one ``log_batch`` (MLflow splits it at its limits)."""
    client(uri).log_batch(
        run_id,
        metrics=[Metric(*row) for row in metrics],
        params=[Param(k, v) for k, v in params],
        tags=[RunTag(k, v) for k, v in tags],
        # Stored when the call returns, whatever mlflow.config.enable_async_logging
        # says: a run ends only after its metrics are in the store.
        synchronous=True,
    )


def log_dataset(
    uri: str,
    run_id: str,
    name: str,
    digest: str,
    source: str,
    columns: Sequence[tuple[str, str]],
    n_rows: int,
    context: str,
) -> None:
    """A dataset input of the run: what the UI's Datasets section shows."""
    scheme = source.split("://", 1)[0] if "://" in source else "local"
    colspec = [{"type": kind, "name": col, "required": True} for col, kind in columns]
    dataset = Dataset(
        name=name,
        digest=digest,
        source_type="local" if scheme == "file" else scheme,
        source=json.dumps({"uri": source}),
        schema=json.dumps({"mlflow_colspec": colspec}),
        profile=json.dumps({"num_rows": int(n_rows)}),
    )
    tags = [InputTag(key="mlflow.data.context", value=context)]
    client(uri).log_inputs(run_id, datasets=[DatasetInput(dataset=dataset, tags=tags)])


@contextlib.contextmanager
def system_metrics(uri: str, run_id: str, seconds: float, enabled: bool = True) -> Iterator[None]:
    """MLflow's system-metrics monitor (psutil) sampling into ``run_id`` for the block."""
    if not enabled:
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    # Its start/stop chatter at INFO would land in every training command's output.
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
    monitor = SystemMetricsMonitor(run_id, sampling_interval=seconds, tracking_uri=uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()  # stops the sampling thread and sends what it holds
        # MLflow's monitor drops the samples of an unfinished interval, so a run
        # shorter than one would have none: one more sample marks the end.
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()


def log_text(uri: str, run_id: str, text: str, filename: str) -> None:
    """Write ``text`` to the artifact ``filename``."""
    client(uri).log_text(run_id, text, filename)


def log_artifact(uri: str, run_id: str, path: str, artifact_path: str | None) -> None:
    """Upload a file, or a directory's contents, to the run's artifacts."""
    local = Path(path)
    if local.is_dir():
        client(uri).log_artifacts(run_id, path, artifact_path)
    elif local.is_file():
        client(uri).log_artifact(run_id, path, artifact_path)
    else:
        raise FileNotFoundError(f"artifact {path!r} does not exist")


def log_figure(uri: str, run_id: str, figure: Any, filename: str) -> None:
    """Store a figure (or PNG bytes already rendered) as the PNG artifact ``filename``."""
    from .plots import render_png

    png = figure if isinstance(figure, bytes) else render_png(figure)
    with tempfile.TemporaryDirectory(prefix="nnpipe-fig-") as tmp:
        local = Path(tmp) / Path(filename).name
        local.write_bytes(png)
        parent = str(Path(filename).parent)
        client(uri).log_artifact(run_id, str(local), None if parent == "." else parent)


def set_terminated(uri: str, run_id: str, status: str) -> None:
    """Mark the run FINISHED, FAILED or KILLED."""
    client(uri).set_terminated(run_id, status=status)


def run_status(uri: str, run_id: str) -> str | None:
    """The run's status (RUNNING, FINISHED, ...); None when the store has no such run."""
    try:
        return client(uri).get_run(run_id).info.status
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise


def record_failure(uri: str, run_id: str, message: str, traceback_text: str, status: str) -> None:
    """The error as a tag, the traceback as an artifact, then the final status.

    Each step is tried even when an earlier one fails; the first error is raised
    at the end so the caller hears of it.
    """
    steps: list[Callable[[], None]] = [
        lambda: client(uri).set_tag(run_id, ERROR_TAG, message[:MAX_TAG_VALUE_LENGTH]),
        lambda: client(uri).log_text(run_id, traceback_text, TRACEBACK_ARTIFACT),
        lambda: client(uri).set_terminated(run_id, status=status),
    ]
    first: BaseException | None = None
    for step in steps:
        try:
            step()
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first


def log_model(uri: str, run_id: str, model_path: str, **kwargs: Any) -> LoggedModel:
    """Log the network (+ scaler) as a models-from-code pyfunc (see ``model.py``)."""
    from .model import log_pyfunc_model

    return log_pyfunc_model(uri, run_id, model_path, **kwargs)


def register_model(
    uri: str, logged: LoggedModel, name: str, score: ValidationScore | None = None
) -> LoggedModel:
    """A new version of registered model ``name`` (``@champion`` if its score beats it)."""
    from .model import register_model as register

    return register(uri, logged, name, score)
