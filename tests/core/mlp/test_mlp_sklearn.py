"""scikit-learn tools work with nnpipe estimators (nnpipe.core itself never imports sklearn)."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp import MLPClassifier, MLPRegressor
from nnpipe.core.perceptron import Perceptron

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone, is_classifier, is_regressor  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X[:, 0] - 2 * X[:, 1] ** 2 - 4.0


def test_clone_copies_parameters_not_fitted_state():
    X, y = data()
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, alpha=0.01, loss="huber")
    model.fit(X, y)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert copy.loss == "huber"
    assert not hasattr(copy, "n_iter_")


def test_estimator_types_are_recognised():
    assert is_regressor(MLPRegressor())
    assert is_classifier(MLPClassifier())
    assert is_classifier(Perceptron())


def test_pipeline_and_grid_search():
    X, y = data()
    pipe = make_pipeline(
        StandardScaler(),
        MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", max_iter=30, random_state=0),
    )
    grid = GridSearchCV(
        pipe, {"mlpregressor__learning_rate_init": [1e-4, 2e-2]}, cv=2, n_jobs=1
    ).fit(X, y)
    assert grid.best_params_["mlpregressor__learning_rate_init"] == 2e-2
    assert grid.predict(X[:5]).shape == (5,)


def test_cross_val_score_on_classifier():
    X, y = data()
    labels = (y > np.median(y)).astype(int)
    clf = MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=60, learning_rate_init=0.02, batch_size=32,
        random_state=0,
    )  # fmt: skip
    scores = cross_val_score(clf, X, labels, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8


def test_deepcopy_of_fitted_model_trains_independently():
    import copy

    X, y = data()
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    twin = copy.deepcopy(model)
    twin.partial_fit(X, y)
    assert not np.array_equal(twin.coefs_[0], model.coefs_[0])
    assert np.shares_memory(twin.coefs_[0], twin._params)  # views rebuilt on the copy
