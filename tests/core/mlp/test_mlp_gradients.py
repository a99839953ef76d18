"""Back-propagation against finite differences, for every activation x loss pair."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp import MLPClassifier, MLPRegressor
from nnpipe.core.mlp.activations import ACTIVATIONS
from nnpipe.core.mlp.losses import LOSSES

HIDDEN = sorted(ACTIVATIONS)
REGRESSION_LOSSES = [k for k, v in LOSSES.items() if v.task == "regression"]
OUTPUTS = sorted(ACTIVATIONS)


def initialised(model, X, y, **prepare_kw):
    """A model with random (non-zero) weights and biases, and its encoded targets."""
    model._validate_params()
    X, Y = model._prepare(X, y, reset=True, **prepare_kw)
    model._initialize(X.shape[1], Y.shape[1])
    model._params[...] = np.random.default_rng(3).normal(scale=0.6, size=model._params.shape)
    return X, Y


def check_gradient(model, X, Y):
    _, analytic = model._loss_and_gradient(X, Y)
    base = model._params.copy()
    numeric = np.empty_like(base)
    h = 1e-6
    for i in range(base.shape[0]):
        model._params[...] = base
        model._params[i] += h
        up, _ = model._loss_and_gradient(X, Y)
        model._params[i] -= 2 * h
        down, _ = model._loss_and_gradient(X, Y)
        numeric[i] = (up - down) / (2 * h)
    model._params[...] = base
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def regression_data(output, rng):
    X = rng.normal(size=(9, 2))
    low, high = ACTIVATIONS[output].low, ACTIVATIONS[output].high
    y = rng.uniform(max(low, -2.0) + 0.05, min(high, 2.0) - 0.05, size=(9, 2))
    return X, y


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss", REGRESSION_LOSSES)
@pytest.mark.parametrize("output", OUTPUTS)
def test_regressor_gradient_matches_finite_difference(hidden, loss, output):
    rng = np.random.default_rng(0)
    X, y = regression_data(output, rng)
    model = MLPRegressor(
        hidden_layer_sizes=(3, 2), activation=hidden, loss=loss, output_activation=output,
        target_scaling=None, dtype="float64", alpha=0.0, random_state=0,
    )  # fmt: skip
    check_gradient(model, *initialised(model, X, y))


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_log_loss_gradient_matches_finite_difference(hidden, n_classes):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(13, 3))
    y = np.arange(13) % n_classes
    model = MLPClassifier(
        hidden_layer_sizes=(4,), activation=hidden, dtype="float64", alpha=0.0, random_state=0
    )
    check_gradient(model, *initialised(model, X, y))


@pytest.mark.parametrize("alpha,l1", [(0.3, 0.0), (0.0, 0.2), (0.3, 0.2)])
def test_l1_and_l2_penalties_enter_loss_and_gradient(alpha, l1):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(10, 3)), rng.normal(size=10)
    kw = dict(hidden_layer_sizes=(4,), activation="tanh", dtype="float64", target_scaling=None)
    plain = MLPRegressor(alpha=0.0, **kw)
    penalised = MLPRegressor(alpha=alpha, l1=l1, **kw)
    Xp, Yp = initialised(plain, X, y)
    initialised(penalised, X, y)
    base_loss, base_grad = plain._loss_and_gradient(Xp, Yp)
    loss, grad = penalised._loss_and_gradient(Xp, Yp)
    n_coef = sum(W.size for W in penalised.coefs_)
    W = penalised._params[:n_coef]
    expected = base_loss + (0.5 * alpha * (W**2).sum() + l1 * np.abs(W).sum()) / len(X)
    assert loss == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(
        grad[:n_coef] - base_grad[:n_coef], (alpha * W + l1 * np.sign(W)) / len(X)
    )
    np.testing.assert_array_equal(grad[n_coef:], base_grad[n_coef:])  # biases not penalised
    check_gradient(penalised, Xp, Yp)
