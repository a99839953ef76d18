"""Where a run came from and where to find it, in both UIs.

MLflow: the dataset a run read (its dataset input), the command's report as the
run's description, the Prefect flow run it belongs to (tags) and its parent run
when a pipeline ran it. Prefect: the report (markdown), the metrics (table) and
a link to the MLflow run, as artifacts of the flow run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect.settings import PREFECT_UI_URL

from flows import progress
from nnpipe.data import ParquetDataset
from nnpipe.tracking import MlflowTracker
from nnpipe.tracking.tracker import FLOW_TAG

# Where `make ui` serves a local (SQLite) store's runs.
LOCAL_UI = "http://127.0.0.1:5000"

# Arrow types -> MLflow column types (mlflow.types.DataType names); others as Arrow names.
_MLFLOW_TYPES = [
    (pa.types.is_float64, "double"),
    (pa.types.is_floating, "float"),
    (pa.types.is_int64, "long"),
    (pa.types.is_integer, "integer"),
    (pa.types.is_boolean, "boolean"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "binary"),
    (pa.types.is_timestamp, "datetime"),
]


def mlflow_type(arrow_type: pa.DataType) -> str:
    """The MLflow column type of an Arrow type (its Arrow name when MLflow has none)."""
    for matches, name in _MLFLOW_TYPES:
        if matches(arrow_type):
            return name
    return str(arrow_type)


def log_dataset_input(
    tracker: MlflowTracker, dataset: ParquetDataset, context: str, run_id: str | None = None
) -> None:
    """The dataset as the run's input: name, fingerprint, path, columns and rows."""
    columns = [*dataset.feature_names, *dataset.target_names]
    schema: dict[str, Any] = {c: mlflow_type(dataset.schema.field(c).type) for c in columns}
    tracker.log_dataset(
        Path(str(dataset.path).rstrip("/")).name or str(dataset.path),
        digest=dataset.fingerprint[:16],
        source=str(dataset.path),
        columns=schema,
        n_rows=sum(p.n_rows for p in dataset.partitions),
        context=context,
        run_id=run_id,
    )


def run_tags(flow_name: str, parent_run_id: str | None = None) -> dict[str, str]:
    """Tags of a flow's MLflow run: the flow, its Prefect flow run, its parent run."""
    from prefect.runtime import flow_run

    tags = {FLOW_TAG: flow_name}
    if flow_run.id is not None:
        tags["prefect.flow_run_id"] = str(flow_run.id)
        tags["prefect.flow_run_name"] = str(flow_run.name)
        if PREFECT_UI_URL.value():  # none for Prefect's temporary server
            tags["prefect.flow_run_url"] = str(flow_run.ui_url)
    if parent_run_id is not None:
        tags["mlflow.parentRunId"] = parent_run_id
    return tags


def mlflow_run_url(tracker: MlflowTracker, run_id: str) -> str:
    """The run's page: on the tracking server, or where ``make ui`` serves a local store."""
    base = tracker.tracking_uri if tracker.tracking_uri.startswith("http") else LOCAL_UI
    return f"{base.rstrip('/')}/#/experiments/{tracker.experiment_id}/runs/{run_id}"


def publish_run(
    tracker: MlflowTracker, run_id: str, report: str, metrics: Mapping[str, Any]
) -> None:
    """The report as the run's description, and report, metrics and run link in Prefect."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )
    from prefect.runtime import flow_run

    tracker.set_tags({"mlflow.note.content": f"```\n{report}\n```"}, run_id=run_id)
    if flow_run.id is None:  # called outside a flow run: no Prefect artifacts
        return
    progress.to_prefect(report)  # the flow run's Logs tab, for scheduled runs
    key = str(flow_run.flow_name).replace("_", "-")
    url = mlflow_run_url(tracker, run_id)
    create_markdown_artifact(f"```\n{report}\n```", key=f"{key}-report", description="report")
    rows = [{"metric": k, "value": v} for k, v in numeric(metrics).items()]
    create_table_artifact(rows, key=f"{key}-metrics", description="final metrics")
    create_link_artifact(url, link_text=f"MLflow run {run_id}", key=f"{key}-mlflow-run")


def numeric(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The plain numbers among ``metrics``, nested ones as ``a.b`` (no booleans or lists)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            out.update(numeric(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out
