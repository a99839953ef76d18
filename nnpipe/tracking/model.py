"""An nnpipe :class:`TrainedModel` as an MLflow pyfunc model, and its registration.

The pyfunc is MLflow's models-from-code: ``pyfunc_model.py`` is copied into the
model and defines the Python class; its one artifact is the TrainedModel ``.npz``
(network + feature scaler + column names) read with ``allow_pickle=False``. So
loading or serving the model runs nnpipe's own code on plain arrays and nothing
pickled. A classifier's pyfunc returns class labels, or with the predict param
``{"predict_proba": true}`` a DataFrame of ``proba_<label>`` columns (declared in
the signature, so ``pyfunc.predict(df, params=...)`` and the REST API pass it).
The model carries a copy of the ``nnpipe`` package (``code_paths``), so
``mlflow models serve`` works with MLflow's default environment manager, which
installs only the pinned requirements (mlflow-skinny, numpy, pandas, threadpoolctl).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import Model, infer_signature

from nnpipe.core.mlp import load_model, network_from_arrays
from nnpipe.core.scalers import load_scaler
from nnpipe.core.serialization import load_npz
from nnpipe.core.trained_model import TrainedModel, default_feature_names

from .base import CHAMPION_ALIAS, LoggedModel, ValidationScore

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
# The logged model's one artifact: the key pyfunc_model.py reads, and its file name.
MODEL_ARTIFACT = "trained_model"
MODEL_ARTIFACT_FILE = "model.npz"

# Models logged by earlier versions carry their own pyfunc_model.py, which reads
# "network" and "feature_scaler" artifacts and imports these names from this module;
# they stay so those models keep loading and serving.
NETWORK_ARTIFACT = "network"
SCALER_ARTIFACT = "feature_scaler"
# The predict param that makes a classifier's pyfunc return class probabilities.
PREDICT_PROBA = "predict_proba"
__all__ = [
    "MODEL_ARTIFACT",
    "NETWORK_ARTIFACT",
    "PREDICT_PROBA",
    "SCALER_ARTIFACT",
    "TrainedModel",
    "default_feature_names",
    "load_network",
    "load_scaler",
    "log_pyfunc_model",
    "predict_frame",
    "probability_frame",
    "promote_if_better",
    "register_model",
    "trained_model_from_files",
    "use_tracking_uri",
]


def load_network(path: str | os.PathLike):
    """Read an nnpipe network ``.npz`` (whichever estimator it holds)."""
    return load_model(path)


def predict_frame(network: Any, scaler: Any, feature_names: list[str], data: Any) -> np.ndarray:
    """``network.predict(scaler.transform(X))`` for earlier models' pyfunc code."""
    return TrainedModel(network, scaler, feature_names).predict(data)


def probability_frame(trained: TrainedModel, data: Any) -> pd.DataFrame:
    """A classifier's class probabilities as columns ``proba_<label>``, in class order."""
    return pd.DataFrame(trained.predict_proba(data), columns=trained.probability_columns())


def trained_model_from_files(
    model_path: str | os.PathLike,
    scaler_path: str | os.PathLike | None = None,
    feature_names: list[str] | None = None,
) -> TrainedModel:
    """A TrainedModel file as it is, or a bare network file + optional scaler file + names."""
    arrays, meta = load_npz(model_path)
    if meta.get("kind") != TrainedModel.__name__:
        network = network_from_arrays(arrays, meta, model_path)
        scaler = None if scaler_path is None else load_scaler(scaler_path)
        return TrainedModel(network, scaler, feature_names)
    trained = TrainedModel.from_arrays(arrays, meta, model_path)
    if scaler_path is not None:
        raise ValueError(
            f"{str(model_path)!r} is a TrainedModel file: it holds its own feature scaler "
            "(or none); do not pass scaler_path"
        )
    if feature_names is not None and list(feature_names) != trained.feature_names:
        raise ValueError(
            f"feature_names {list(feature_names)} differ from the {trained.feature_names} "
            f"saved in {str(model_path)!r}"
        )
    return trained


def _input_frame(input_example: Any, trained: TrainedModel) -> pd.DataFrame:
    if input_example is None:
        scaler = trained.feature_scaler
        if scaler is None or not hasattr(scaler, "mean_"):
            raise ValueError("input_example is required unless a StandardScaler is given")
        input_example = np.asarray(scaler.mean_, dtype=np.float64).reshape(1, -1)
    X = trained.feature_matrix(input_example)[:5]
    # float64 columns: JSON numbers arrive as doubles, and MLflow never narrows types.
    return pd.DataFrame(X, columns=trained.feature_names)


def _package_copy(directory: Path) -> Path:
    """A copy of the ``nnpipe`` package (sources only) for the model's ``code_paths``."""
    package = Path(__file__).resolve().parents[1]
    target = directory / package.name
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


# The packages the model pins (see _requirements), by the module each provides.
PINNED_MODULES = {
    "mlflow": ["mlflow-skinny"],
    "numpy": ["numpy"],
    "pandas": ["pandas"],
    "threadpoolctl": ["threadpoolctl"],
}


@contextlib.contextmanager
def _only_pinned_packages_known() -> Iterator[None]:
    """MLflow's check of the pins against this environment, without scanning every package.

    Before logging, MLflow checks that the installed versions satisfy the model's
    requirements, and to do so first maps every installed distribution to its
    modules (2-3 s of a 5 s training command here). The pins are read from this
    very environment, so the check cannot fail; a map of just the pinned packages
    answers it. Afterwards the map is reset, so any later requirement inference
    in this process builds the full one as usual.
    """
    from mlflow.utils import requirements_utils as reqs

    if getattr(reqs, "_MODULES_TO_PACKAGES", ()) is not None:  # built already, or MLflow changed
        yield
        return
    reqs._MODULES_TO_PACKAGES = {module: list(pkgs) for module, pkgs in PINNED_MODULES.items()}
    try:
        yield
    finally:
        reqs._MODULES_TO_PACKAGES = None
        reqs._PACKAGES_TO_MODULES = None


def _requirements() -> list[str]:
    # mlflow-skinny (which the mlflow package installs too) has the pyfunc and the
    # scoring server; a serving environment built from these pins installs in a
    # fraction of full MLflow's time (no server, SQL, scipy or scikit-learn).
    reqs = []
    for package in ("mlflow-skinny", "numpy", "pandas", "threadpoolctl"):
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
    """Log a TrainedModel file (or network + scaler files) as a pyfunc in run ``run_id``."""
    # Read and checked before anything is logged.
    trained = trained_model_from_files(model_path, scaler_path, feature_names)
    example = _input_frame(input_example, trained)
    # A classifier answers with labels, or with probabilities when asked by this param.
    classifier = callable(getattr(trained.network, "predict_proba", None))
    params = {PREDICT_PROBA: False} if classifier else None
    signature = infer_signature(example, trained.predict(example), params=params)
    estimator = type(trained.network).__name__
    client = MlflowClient(tracking_uri=tracking_uri)
    # Created here in the run's own experiment: left to Model.log, the logged model
    # would land in the fluent API's current experiment (Default, artifacts in ./mlruns).
    logged_model = client.create_logged_model(
        client.get_run(run_id).info.experiment_id,
        name=name,
        source_run_id=run_id,
        tags={"nnpipe.estimator": estimator},
        model_type="nnpipe",
    )
    with tempfile.TemporaryDirectory(prefix="nnpipe-model-") as tmp:
        artifact = Path(tmp) / MODEL_ARTIFACT_FILE
        trained.save(artifact)  # one file, whichever form the model came in
        code = _package_copy(Path(tmp) / "code")
        with use_tracking_uri(tracking_uri), _only_pinned_packages_known():
            info = Model.log(
                artifact_path=None,  # deprecated in MLflow 3 but still positional
                name=name,
                flavor=mlflow.pyfunc,
                run_id=run_id,
                python_model=str(PYFUNC_CODE),
                artifacts={MODEL_ARTIFACT: str(artifact)},
                signature=signature,
                input_example=example,
                pip_requirements=_requirements(),
                # nnpipe itself travels with the model: MLflow puts code/ on sys.path
                # when it loads or serves it, in whatever environment it builds.
                code_paths=[str(code)],
                metadata={"nnpipe_estimator": estimator},
                model_id=logged_model.model_id,
            )
    return LoggedModel(model_uri=info.model_uri, run_id=run_id)


def register_model(
    tracking_uri: str, logged: LoggedModel, name: str, score: ValidationScore | None = None
) -> LoggedModel:
    """Create a new version of registered model ``name`` from a logged model.

    With a ``score`` the version is tagged with it and takes the ``@champion`` alias
    when there is no champion yet or it beats the champion's score (see
    :func:`promote_if_better`).
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"registered model name must be a non-empty string, got {name!r}")
    with use_tracking_uri(tracking_uri):
        version = mlflow.register_model(logged.model_uri, name)
    champion = False
    if score is not None:
        champion = promote_if_better(tracking_uri, name, str(version.version), score)["moved"]
    return LoggedModel(
        model_uri=logged.model_uri,
        run_id=logged.run_id,
        registered_name=name,
        version=str(version.version),
        champion=champion,
    )


SCORE_TAGS = ("nnpipe.validation_metric", "nnpipe.validation_value", "nnpipe.greater_is_better")


def promote_if_better(
    tracking_uri: str, name: str, version: str, score: ValidationScore
) -> dict[str, Any]:
    """Tag ``version`` with its score; move ``@champion`` to it if it beats the champion.

    The champion's score is read from its own version tags. A champion scored on
    another metric, or with none recorded, is replaced: the two cannot be compared.
    Returns ``{"moved", "champion" (the version holding the alias now), "previous"
    (the one before, or None), "previous_value" (its score, or None), "metric"}``.
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    values = (score.name, repr(float(score.value)), str(score.greater_is_better).lower())
    for key, value in zip(SCORE_TAGS, values, strict=True):
        client.set_model_version_tag(name, version, key, value)
    try:
        current = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException:  # no champion yet
        current = None
    held = None
    if current is not None and current.tags.get(SCORE_TAGS[0]) == score.name:
        held = float(current.tags[SCORE_TAGS[1]])
    moved = held is None or score.beats(held)
    if moved:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    previous = None if current is None else str(current.version)
    return {
        "moved": moved,
        "champion": version if moved else previous,
        "previous": previous,
        "previous_value": held,
        "metric": score.name,
    }
