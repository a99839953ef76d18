"""``nnpipe predict``: score a CSV or Parquet file with an MLflow model or a local .npz.

Plain functions, not a flow: one-shot scoring should not wait for a Prefect server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnpipe.core.mlp import load_model
from nnpipe.core.scalers import SCALERS
from nnpipe.core.serialization import ModelFileError, load_npz

# Files train_bp writes into its model directory (models/<run id>/).
MODEL_FILE = "model.npz"
SCALER_FILE = "x_scaler.npz"
MODEL_INFO = "model.json"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MLFLOW_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/", "file://", "s3://", "gs://")


def _format(path: Path, what: str) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{what} {str(path)!r} has suffix {path.suffix!r}; allowed: {', '.join(FORMATS)}"
        )
    return fmt


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame (errors name the file)."""
    fmt = _format(path, "input")
    if not path.is_file():
        raise FileNotFoundError(f"input file {str(path)!r} does not exist")
    try:
        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ValueError(f"cannot read {fmt} file {str(path)!r}: {exc}") from exc
    if frame.empty:
        raise ValueError(f"input file {str(path)!r} has no rows")
    return frame


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as CSV or Parquet, by suffix, through a temporary file + rename."""
    fmt = _format(path, "output")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load_scaler(path: Path):
    """A feature scaler file of any nnpipe scaler kind (no pickle)."""
    arrays, meta = load_npz(path)
    kinds = {cls.__name__: cls for cls in SCALERS.values()}
    cls = kinds.get(meta.get("kind"))
    if cls is None:
        raise ModelFileError(f"{str(path)!r} holds a {meta.get('kind')!r}, not a scaler")
    return cls.from_arrays(arrays, meta, path)


def _local_predictor(model_path: Path, frame: pd.DataFrame):
    """network.predict(scaler.transform(X)) with the columns saved beside the model."""
    if not model_path.is_file():
        raise FileNotFoundError(f"model file {str(model_path)!r} does not exist")
    network = load_model(model_path)
    info_path = model_path.with_name(MODEL_INFO)
    if info_path.is_file():
        features = json.loads(info_path.read_text())["features"]
    else:
        # No column list saved: the numeric columns, in file order, must match the network.
        features = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        if len(features) != network.n_features_in_:
            raise ValueError(
                f"{str(model_path)!r} takes {network.n_features_in_} features but the input has "
                f"{len(features)} numeric columns {features}; save {MODEL_INFO} beside the model"
            )
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(
            f"input is missing feature columns {missing}; the model was trained on {features}"
        )
    X = frame[features].to_numpy(dtype=np.float64)  # (n, n_features)
    scaler_path = model_path.with_name(SCALER_FILE)
    if scaler_path.is_file():
        X = load_scaler(scaler_path).transform(X)
    return network.predict(X)


def _mlflow_predictor(uri: str, frame: pd.DataFrame):
    import mlflow

    from nnpipe.tracking import default_tracking_uri, use_tracking_uri

    try:
        with use_tracking_uri(default_tracking_uri()):
            model = mlflow.pyfunc.load_model(uri)
    except mlflow.exceptions.MlflowException as exc:
        raise ValueError(f"cannot load MLflow model {uri!r}: {exc.message}") from exc
    return model.predict(frame)


def predict_file(
    model: str, input_path: str | Path, output_path: str | Path, column: str = "prediction"
) -> dict[str, Any]:
    """Predict every row of ``input_path``; write input columns + ``column`` to ``output_path``."""
    input_path, output_path = Path(input_path), Path(output_path)
    _format(output_path, "output")  # refuse a bad output name before any work
    frame = read_table(input_path)
    if model.startswith(MLFLOW_SCHEMES):
        pred = _mlflow_predictor(model, frame)
    else:
        pred = _local_predictor(Path(model), frame)
    pred = np.asarray(pred, dtype=np.float64)
    pred = pred.reshape(len(frame), -1)  # (n, n_targets)
    out = frame.copy()
    if pred.shape[1] == 1:
        out[column] = pred[:, 0]
    else:
        for k in range(pred.shape[1]):
            out[f"{column}_{k}"] = pred[:, k]
    write_table(out, output_path)
    return {
        "output": str(output_path),
        "n_rows": len(out),
        "column": column,
        "min": float(pred.min()),
        "max": float(pred.max()),
    }
