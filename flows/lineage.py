"""What a run read, recorded where MLflow users look: the run's dataset inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from nnpipe.data import ParquetDataset
from nnpipe.tracking import MlflowTracker

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


def describe_run(tracker: MlflowTracker, run_id: str, report: str) -> None:
    """The command's report as the run's description (the run page's Description)."""
    tracker.set_tags({"mlflow.note.content": f"```\n{report}\n```"}, run_id=run_id)
