"""Bad input and divergence: specific errors, nothing learned is lost."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp import DivergenceError, MLPClassifier, MLPRegressor
from nnpipe.core.validation import NotFittedError


@pytest.fixture
def Xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    return X, X.sum(axis=1)


def fast(**kw):
    return MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0, **kw)


def test_nan_and_inf_are_counted_per_column(Xy):
    X, y = Xy
    X = X.copy()
    X[3, 1] = np.nan
    X[5, 1] = np.inf
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"2 NaN and 1 infinite.*column 1: 2, column 2: 1"):
        fast().fit(X, y)
    y_bad = y.copy()
    y_bad[0] = np.nan
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        fast().fit(Xy[0], y_bad)


def test_shapes_and_empty_data(Xy):
    X, y = Xy
    with pytest.raises(ValueError, match="2-D"):
        fast().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="different numbers of samples: X has 40, y has 39"):
        fast().fit(X, y[:-1])
    with pytest.raises(ValueError, match="empty"):
        fast().fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="y must be 1-D or 2-D"):
        fast().fit(X, y.reshape(2, 2, 10))


def test_feature_count_differing_at_predict(Xy):
    X, y = Xy
    model = fast().fit(X, y)
    with pytest.raises(
        ValueError, match="X has 2 features, but MLPRegressor is expecting 3 features as input"
    ):
        model.predict(X[:, :2])
    with pytest.raises(ValueError, match="2 features"):
        model.partial_fit(X[:, :2], y)


def test_predict_before_fit_says_so(Xy):
    with pytest.raises(NotFittedError, match="not fitted"):
        fast().predict(Xy[0])


@pytest.mark.parametrize(
    "param,value,allowed",
    [
        ("activation", "softplus", "'relu'"),
        ("solver", "lbfgs", "'adam'"),
        ("learning_rate", "cyclic", "'adaptive'"),
        ("loss", "hinge", "'huber'"),
        ("output_activation", "softmax", "'identity'"),
        ("target_scaling", "robust", "'minmax'"),
        ("dtype", "float16", "'float32'"),
    ],
)
def test_unknown_parameter_values_name_the_allowed_ones(Xy, param, value, allowed):
    with pytest.raises(
        ValueError, match=f"{param}={value!r} is not supported; allowed: .*{allowed}"
    ):
        fast(**{param: value}).fit(*Xy)


@pytest.mark.parametrize(
    "kw",
    [
        {"hidden_layer_sizes": (4, 0)},
        {"alpha": -1.0},
        {"batch_size": 0},
        {"max_iter": 2.5},
        {"momentum": 1.5},
        {"beta_2": 1.0},
        {"early_stopping": True, "validation_fraction": 0.0},
        {"random_state": -3},
        {"n_threads": 0},
    ],
)
def test_invalid_numeric_parameters_are_named(Xy, kw):
    name = next(iter(kw)) if len(kw) == 1 else "validation_fraction"
    kw = {"max_iter": 2, **kw}
    with pytest.raises(ValueError, match=name):
        MLPRegressor(hidden_layer_sizes=kw.pop("hidden_layer_sizes", (4,)), **kw).fit(*Xy)


def test_set_params_rejects_unknown_names():
    with pytest.raises(ValueError, match="no parameter 'hidden_layers'.*hidden_layer_sizes"):
        MLPRegressor().set_params(hidden_layers=(3,))


def test_classifier_rejects_multi_column_labels(Xy):
    X, _ = Xy
    with pytest.raises(ValueError, match="1-D class labels"):
        MLPClassifier(max_iter=1).fit(X, np.zeros((40, 2)))


def test_divergence_stops_with_epoch_and_step_and_keeps_finite_weights(Xy):
    X, y = Xy
    y = y * 1e30  # huge targets with no scaling: the loss overflows float32
    model = MLPRegressor(
        hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=10.0, momentum=0.0,
        target_scaling=None, batch_size=10, max_iter=5, random_state=0,
    )  # fmt: skip
    with pytest.raises(DivergenceError, match=r"epoch 1, step \d+.*smaller learning_rate_init"):
        model.fit(X, y)
    assert np.isfinite(model._params).all()
    assert np.isfinite(model.predict(X)).all()


def test_divergence_in_a_later_epoch_keeps_earlier_progress(Xy):
    X, y = Xy
    model = MLPRegressor(
        hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=0.01, batch_size=10,
        max_iter=3, random_state=0, n_iter_no_change=50,
    )  # fmt: skip
    model.fit(X, y)
    model.set_params(learning_rate_init=1e12, warm_start=True)
    model._optimizer.learning_rate = 1e12
    with pytest.raises(DivergenceError, match="epoch 4"):
        model.fit(X, y)
    assert np.isfinite(model._params).all()
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3


def test_warm_start_with_changed_architecture_is_refused(Xy):
    model = fast().fit(*Xy)
    model.set_params(warm_start=True, hidden_layer_sizes=(6,))
    with pytest.raises(
        ValueError, match=r"warm_start=True continues the fitted network \[3, 4, 1\]"
    ):
        model.fit(*Xy)
