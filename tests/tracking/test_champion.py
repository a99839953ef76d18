"""The @champion alias: set on the first version, moved only by a better validation score."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from nnpipe.tracking import CHAMPION_ALIAS, MlflowTracker, ValidationScore
from nnpipe.tracking.model import SCORE_TAGS, promote_if_better, register_model

from .conftest import FEATURES


def champion_version(uri: str, name: str) -> str:
    return str(MlflowClient(uri).get_model_version_by_alias(name, CHAMPION_ALIAS).version)


def test_champion_moves_only_to_a_strictly_better_score(logged_regressor, model_store):
    _, _, logged = logged_regressor
    _, uri = model_store
    name = "champion-r2"
    moved = []
    for r2 in (0.50, 0.40, 0.50, 0.61):  # worse and tied scores keep the champion
        version = register_model(uri, logged, name, ValidationScore("r2", r2))
        moved.append(version.champion)
        assert version.champion_uri == f"models:/{name}@champion"
    assert moved == [True, False, False, True]
    assert champion_version(uri, name) == "4"
    tags = MlflowClient(uri).get_model_version(name, "2").tags
    assert {k: tags[k] for k in SCORE_TAGS} == {
        "nnpipe.validation_metric": "r2",
        "nnpipe.validation_value": "0.4",
        "nnpipe.greater_is_better": "true",
    }


def test_a_lower_is_better_metric_and_an_incomparable_champion(logged_regressor, model_store):
    _, _, logged = logged_regressor
    _, uri = model_store
    name = "champion-logloss"
    first = register_model(uri, logged, name, ValidationScore("log_loss", 0.3, False))
    assert first.champion
    assert not register_model(uri, logged, name, ValidationScore("log_loss", 0.35, False)).champion
    assert register_model(uri, logged, name, ValidationScore("log_loss", 0.2, False)).champion
    # A champion scored on another metric cannot be compared: the new version takes over.
    assert promote_if_better(uri, name, "1", ValidationScore("r2", 0.1))
    assert champion_version(uri, name) == "1"
    # A version registered without a score never takes or moves the alias.
    plain = register_model(uri, logged, name)
    assert not plain.champion and champion_version(uri, name) == "1"


def test_tracker_registers_with_a_score_and_the_alias_loads(model_store, regressor_files):
    network_path, scaler_path, X, net, scaler = regressor_files
    _, uri = model_store
    tracker = MlflowTracker("nnpipe-champion", registered_model_name="champion-tracker")
    with tracker.run("train"):
        tracker.log_model(
            network_path,
            scaler_path=scaler_path,
            input_example=pd.DataFrame(X[:3], columns=FEATURES),
            feature_names=FEATURES,
            score=ValidationScore("r2", 0.9),
        )
    (registered,) = tracker.registered_models
    assert registered.champion and registered.version == "1"
    pyfunc = mlflow.pyfunc.load_model(registered.champion_uri)  # MLFLOW_TRACKING_URI = uri
    frame = pd.DataFrame(X[:4], columns=FEATURES)
    np.testing.assert_array_equal(
        np.asarray(pyfunc.predict(frame)).ravel(), net.predict(scaler.transform(X[:4])).ravel()
    )
