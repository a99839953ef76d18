"""An nnpipe network (+ feature scaler) as an MLflow pyfunc model, and its registration.

The pyfunc is MLflow's models-from-code: ``pyfunc_model.py`` is copied into the
model and defines the Python class; the ``.npz`` network and scaler are artifacts
read with ``allow_pickle=False``. So loading or serving the model runs nnpipe's
own code on plain arrays and nothing pickled. Serving needs nnpipe installed in
the serving environment (``mlflow models serve --env-manager local``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import Model, infer_signature

from nnpipe.core.scalers import SCALERS
from nnpipe.core.serialization import ModelFileError, load_npz

from .base import LoggedModel

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
NETWORK_ARTIFACT = "network"
SCALER_ARTIFACT = "feature_scaler"
_SCALER_KINDS = {cls.__name__: cls for cls in SCALERS.values()}


def load_scaler(path: str | os.PathLike):
    """Read a feature scaler ``.npz`` of any nnpipe scaler kind (no pickle)."""
    arrays, meta = load_npz(path)
    cls = _SCALER_KINDS.get(meta.get("kind"))
    if cls is None:
        raise ModelFileError(
            f"{str(path)!r} holds a {meta.get('kind')!r}, expected one of {sorted(_SCALER_KINDS)}"
        )
    return cls.from_arrays(arrays, meta, path)


def load_network(path: str | os.PathLike):
    """Read an nnpipe network ``.npz`` (whichever estimator it holds)."""
    from nnpipe.core.mlp import load_model

    return load_model(path)


def default_feature_names(n_features: int) -> list[str]:
    """``x0, x1, ...``: column names used when none are given."""
    return [f"x{i}" for i in range(n_features)]


def as_feature_matrix(data: Any, feature_names: list[str]) -> np.ndarray:
    """Pick ``feature_names`` from a DataFrame (or check an array's width) as float64 rows."""
    if isinstance(data, pd.DataFrame):
        missing = [name for name in feature_names if name not in data.columns]
        if missing:
            raise ValueError(
                f"input is missing feature columns {missing}; expected {feature_names}"
            )
        return data[feature_names].to_numpy(dtype=np.float64)
    X = np.asarray(data, dtype=np.float64)
    X = X.reshape(1, -1) if X.ndim == 1 else X
    if X.ndim != 2 or X.shape[1] != len(feature_names):
        raise ValueError(
            f"input has shape {X.shape}; expected (n_samples, {len(feature_names)}) "
            f"with columns {feature_names}"
        )
    return X


def predict_frame(network: Any, scaler: Any, feature_names: list[str], data: Any) -> np.ndarray:
    """What the pyfunc returns: ``network.predict(scaler.transform(X))`` in target units."""
    X = as_feature_matrix(data, feature_names)  # (n, n_features)
    if scaler is not None:
        X = scaler.transform(X)
    return network.predict(X)


def _check_parts(network: Any, scaler: Any, feature_names: list[str]) -> None:
    n = int(network.n_features_in_)
    if len(feature_names) != n:
        raise ValueError(f"{len(feature_names)} feature_names given but the network takes {n}")
    if len(set(feature_names)) != len(feature_names):
        raise ValueError(f"feature_names has duplicates: {feature_names}")
    if scaler is not None and int(scaler.n_features_in_) != n:
        raise ValueError(
            f"the feature scaler has {scaler.n_features_in_} features but the network takes {n}"
        )


def _input_frame(input_example: Any, feature_names: list[str], scaler: Any) -> pd.DataFrame:
    if input_example is None:
        if scaler is None or not hasattr(scaler, "mean_"):
            raise ValueError("input_example is required unless a StandardScaler is given")
        input_example = np.asarray(scaler.mean_, dtype=np.float64).reshape(1, -1)
    X = as_feature_matrix(input_example, feature_names)[:5]
    # float64 columns: JSON numbers arrive as doubles, and MLflow never narrows types.
    return pd.DataFrame(X, columns=feature_names)


def _requirements() -> list[str]:
    reqs = []
    for package in ("mlflow", "numpy", "pandas", "threadpoolctl"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            reqs.append(f"{package}=={metadata.version(package)}")
    return reqs


@contextlib.contextmanager
def use_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's module-level tracking URI at ``uri`` for a fluent-API call.

    ``Model.log``, ``register_model`` and ``pyfunc.load_model`` resolve the URI
    globally. Afterwards the global is cleared again (so ``MLFLOW_TRACKING_URI``
    decides, as before) unless it had been set explicitly, and the environment
    variable is restored exactly (MLflow's own setter overwrites it).
    """
    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    previous = mlflow.get_tracking_uri()
    if previous == uri:
        yield
        return
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # clears the global and the variable
        if previous_env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env
        if mlflow.get_tracking_uri() != previous:  # it had been set explicitly
            mlflow.set_tracking_uri(previous)
            if previous_env is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous_env


def log_pyfunc_model(
    tracking_uri: str,
    run_id: str,
    model_path: str | os.PathLike,
    *,
    scaler_path: str | os.PathLike | None = None,
    input_example: Any = None,
    feature_names: list[str] | None = None,
    name: str = "model",
) -> LoggedModel:
    """Log network + scaler files as a models-from-code pyfunc in run ``run_id``."""
    network = load_network(model_path)  # validates the file before anything is logged
    scaler = load_scaler(scaler_path) if scaler_path is not None else None
    names = list(feature_names or default_feature_names(int(network.n_features_in_)))
    _check_parts(network, scaler, names)
    example = _input_frame(input_example, names, scaler)
    signature = infer_signature(example, predict_frame(network, scaler, names, example))
    artifacts = {NETWORK_ARTIFACT: str(Path(model_path).resolve())}
    if scaler_path is not None:
        artifacts[SCALER_ARTIFACT] = str(Path(scaler_path).resolve())
    client = MlflowClient(tracking_uri=tracking_uri)
    # Created here in the run's own experiment: left to Model.log, the logged model
    # would land in the fluent API's current experiment (Default, artifacts in ./mlruns).
    logged_model = client.create_logged_model(
        client.get_run(run_id).info.experiment_id,
        name=name,
        source_run_id=run_id,
        tags={"nnpipe.estimator": type(network).__name__},
        model_type="nnpipe",
    )
    with use_tracking_uri(tracking_uri):
        info = Model.log(
            artifact_path=None,  # deprecated in MLflow 3 but still positional
            name=name,
            flavor=mlflow.pyfunc,
            run_id=run_id,
            python_model=str(PYFUNC_CODE),
            artifacts=artifacts,
            model_config={"feature_names": names},
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            metadata={"nnpipe_estimator": type(network).__name__},
            model_id=logged_model.model_id,
        )
    return LoggedModel(model_uri=info.model_uri, run_id=run_id)


def register_model(tracking_uri: str, logged: LoggedModel, name: str) -> LoggedModel:
    """Create a new version of registered model ``name`` from a logged model."""
    if not name or not isinstance(name, str):
        raise ValueError(f"registered model name must be a non-empty string, got {name!r}")
    with use_tracking_uri(tracking_uri):
        version = mlflow.register_model(logged.model_uri, name)
    return LoggedModel(
        model_uri=logged.model_uri,
        run_id=logged.run_id,
        registered_name=name,
        version=str(version.version),
    )
