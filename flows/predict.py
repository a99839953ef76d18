"""``nnpipe predict``: score a CSV or Parquet file with an MLflow model or a local model file.

Plain functions, not a flow: one-shot scoring should not wait for a Prefect server.
A local model is a :class:`~nnpipe.core.trained_model.TrainedModel` file (what
``train_bp`` writes); model directories written by earlier versions are read too.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnpipe.core.mlp import network_from_arrays
from nnpipe.core.scalers import load_scaler
from nnpipe.core.serialization import ModelFileError, load_npz
from nnpipe.core.trained_model import TrainedModel
from nnpipe.data import storage

# train_bp writes one TrainedModel file per run: models/<run id>/model.npz.
MODEL_FILE = "model.npz"
# Earlier versions wrote the bare network as model.npz, with the feature scaler and
# the column names (JSON) in these files beside it.
SCALER_FILE = "x_scaler.npz"
MODEL_INFO = "model.json"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MLFLOW_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/", "file://", "s3://", "gs://")


def _format(path: Path | str, what: str) -> str:
    suffix = Path(storage.basename(path)).suffix
    fmt = FORMATS.get(suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{what} {str(path)!r} has suffix {suffix!r}; allowed: {', '.join(FORMATS)}"
        )
    return fmt


def read_table(path: Path | str, storage_options: dict | None = None) -> pd.DataFrame:
    """A CSV or Parquet file (local or a URL) as a DataFrame (errors name the file)."""
    fmt = _format(path, "input")
    source: Any = path
    if storage.is_url(path):
        try:
            source = io.BytesIO(storage.read_bytes(path, storage_options))
        except (FileNotFoundError, IsADirectoryError):
            raise FileNotFoundError(f"input file {str(path)!r} does not exist") from None
    elif not Path(path).is_file():
        raise FileNotFoundError(f"input file {str(path)!r} does not exist")
    try:
        frame = pd.read_csv(source) if fmt == "csv" else pd.read_parquet(source)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ValueError(f"cannot read {fmt} file {str(path)!r}: {exc}") from exc
    if frame.empty:
        raise ValueError(f"input file {str(path)!r} has no rows")
    return frame


def write_table(frame: pd.DataFrame, path: Path | str, storage_options: dict | None = None) -> None:
    """Write a DataFrame as CSV or Parquet, by suffix: temporary file + rename, or one object."""
    fmt = _format(path, "output")
    if storage.is_url(path):
        buffer = io.BytesIO()
        if fmt == "csv":
            buffer.write(frame.to_csv(index=False).encode())
        else:
            frame.to_parquet(buffer, index=False)
        storage.write_bytes(path, buffer.getvalue(), storage_options)
        return
    path = Path(path)
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


def load_local_model(path: str | Path, frame: pd.DataFrame | None = None) -> TrainedModel:
    """The model in a file or model directory; ``frame`` names the columns of a bare network."""
    if storage.is_url(path):  # a model file on object storage (with its scaler and columns)
        trained = storage.load_file(TrainedModel.load, path)
        return trained
    path = Path(path)
    path = path / MODEL_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    arrays, meta = load_npz(path)
    if meta.get("kind") == TrainedModel.__name__:
        return TrainedModel.from_arrays(arrays, meta, path)
    return _earlier_layout(network_from_arrays(arrays, meta, path), path, frame)


def _earlier_layout(network: Any, path: Path, frame: pd.DataFrame | None) -> TrainedModel:
    """A bare network file, with the scaler and column names saved beside it if present."""
    scaler_path = path.with_name(SCALER_FILE)
    scaler = load_scaler(scaler_path) if scaler_path.is_file() else None
    info_path = path.with_name(MODEL_INFO)
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text())
            return TrainedModel(network, scaler, info["features"], info.get("targets"))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelFileError(f"{str(info_path)!r} is not a valid column list: {exc}") from exc
    # No column list saved: the numeric columns, in file order, must match the network.
    features = []
    if frame is not None:
        features = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if len(features) != network.n_features_in_:
        raise ValueError(
            f"{str(path)!r} takes {network.n_features_in_} features but the input has "
            f"{len(features)} numeric columns {features}; save {MODEL_INFO} beside the model "
            'with {"features": [...]}, or convert it: TrainedModel.from_files(network_path, '
            "scaler_path, feature_names).save(path) (nnpipe.core.trained_model)"
        )
    return TrainedModel(network, scaler, features)


def feature_frame(frame: pd.DataFrame, features: list[str], source: str) -> pd.DataFrame:
    """The model's feature columns of ``frame`` as float64, whatever the model's source.

    Extra columns are left out (they stay in the output file); a missing column or a
    value that is not a number is one line naming the column (and the row, counted
    from 1 below the header).
    """
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise ValueError(
            f"input file {source!r} is missing feature columns {missing}; "
            f"the model takes {list(features)}"
        )
    columns = {}
    for name in features:
        column = frame[name]
        if isinstance(column, pd.DataFrame):
            raise ValueError(f"input file {source!r} has more than one column named {name!r}")
        numeric = pd.to_numeric(column, errors="coerce")
        bad = np.flatnonzero((numeric.isna() & column.notna()).to_numpy())
        if bad.size:
            raise ValueError(
                f"feature column {name!r} is not numeric: row {bad[0] + 1} of {source!r} "
                f"holds {column.iloc[bad[0]]!r}"
            )
        columns[name] = numeric.astype(np.float64)
    return pd.DataFrame(columns, index=frame.index)


def _mlflow_predictor(uri: str, frame: pd.DataFrame, source: str) -> tuple[Any, Any]:
    """(predictions, class probabilities or None) of the MLflow model at ``uri``."""
    import mlflow

    from nnpipe.tracking import default_tracking_uri, use_tracking_uri
    from nnpipe.tracking.model import PREDICT_PROBA

    try:
        with use_tracking_uri(default_tracking_uri()):
            model = mlflow.pyfunc.load_model(uri)
    except mlflow.exceptions.MlflowException as exc:
        raise ValueError(f"cannot load MLflow model {uri!r}: {exc.message}") from exc
    schema = model.metadata.get_input_schema()
    if schema is not None and schema.has_input_names():
        # Checked here as for a local file, so MLflow's schema errors never show.
        frame = feature_frame(frame, schema.input_names(), source)
    params = model.metadata.get_params_schema()
    try:
        proba = None
        if params is not None and PREDICT_PROBA in {p.name for p in params.params}:
            # A classifier: it declares the param that makes it return probabilities.
            proba = pd.DataFrame(model.predict(frame, params={PREDICT_PROBA: True}))
        return model.predict(frame), proba
    except mlflow.exceptions.MlflowException as exc:
        reason = exc.message.rsplit("Error: ", 1)[-1].strip().splitlines()[0]
        raise ValueError(f"MLflow model {uri!r} refused {source!r}: {reason}") from exc


def _local_predictor(model: str, frame: pd.DataFrame, source: str) -> tuple[Any, Any]:
    """(predictions, class probabilities or None) of a local model file."""
    trained = load_local_model(model, frame)
    X = feature_frame(frame, trained.feature_names, source)
    if not callable(getattr(trained.network, "predict_proba", None)):
        return trained.predict(X), None
    proba = pd.DataFrame(trained.predict_proba(X), columns=trained.probability_columns())
    return trained.predict(X), proba


def predict_file(
    model: str, input_path: str | Path, output_path: str | Path, column: str = "prediction"
) -> dict[str, Any]:
    """Predict every row of ``input_path``; write input columns + ``column`` to ``output_path``.

    A classifier's file gets the label in ``column`` and each class's probability
    in a ``proba_<label>`` column.
    """
    input_path, output_path = (
        p if storage.is_url(p) else Path(p) for p in (input_path, output_path)
    )
    _format(output_path, "output")  # refuse a bad output name before any work
    frame = read_table(input_path)
    nnpipe_file = storage.is_url(model) and model.endswith(".npz")  # else an MLflow model
    on_mlflow = model.startswith(MLFLOW_SCHEMES) and not nnpipe_file
    predictor = _mlflow_predictor if on_mlflow else _local_predictor
    pred, proba = predictor(model, frame, str(input_path))
    out = frame.copy()
    if proba is not None:
        return _write_classes(out, np.asarray(pred).reshape(-1), proba, output_path, column)
    pred = np.asarray(pred, dtype=np.float64)
    pred = pred.reshape(len(frame), -1)  # (n, n_targets)
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


def _write_classes(
    out: pd.DataFrame, labels: np.ndarray, proba: pd.DataFrame, path: Path | str, column: str
) -> dict[str, Any]:
    """Labels in ``column``, probability columns beside them; the count of each label."""
    out[column] = labels
    for name in proba.columns:
        out[name] = proba[name].to_numpy()
    write_table(out, path)
    values, counts = np.unique(labels, return_counts=True)
    return {
        "output": str(path),
        "n_rows": len(out),
        "column": column,
        "probability_columns": [str(c) for c in proba.columns],
        "counts": {str(v): int(c) for v, c in zip(values.tolist(), counts, strict=True)},
    }


def predict_report(info: dict[str, Any]) -> str:
    """One line on what :func:`predict_file` wrote (a classifier: the count of each label)."""
    rows = "1 prediction" if info["n_rows"] == 1 else f"{info['n_rows']} predictions"
    where = f"wrote {rows} to {info['output']}"
    if "counts" not in info:
        column, low, high = info["column"], info["min"], info["max"]
        return f"{where} (column {column!r}, range {low:.4g} .. {high:.4g})"
    counts = ", ".join(f"{label} {n}" for label, n in info["counts"].items())
    return (
        f"{where} (labels in column {info['column']!r}: {counts}; "
        f"probabilities in {', '.join(info['probability_columns'])})"
    )
