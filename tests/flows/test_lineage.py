"""Arrow column types as the MLflow types a run's dataset input declares."""

from __future__ import annotations

import pyarrow as pa
import pytest

from flows.lineage import mlflow_type


@pytest.mark.parametrize(
    ("arrow", "mlflow"),
    [
        (pa.float64(), "double"),
        (pa.float32(), "float"),
        (pa.int64(), "long"),
        (pa.int32(), "integer"),
        (pa.int8(), "integer"),
        (pa.bool_(), "boolean"),
        (pa.string(), "string"),
        (pa.large_string(), "string"),
        (pa.binary(), "binary"),
        (pa.timestamp("ms"), "datetime"),
        (pa.decimal128(10, 2), "decimal128(10, 2)"),  # no MLflow type: the Arrow name
    ],
)
def test_mlflow_type(arrow, mlflow):
    assert mlflow_type(arrow) == mlflow
