"""Activations: values against their textbook formulas, derivatives against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp.activations import ACTIVATIONS, LEAKY_SLOPE, get_activation, softmax

REFERENCE = {
    "identity": lambda z: z,
    "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
}


@pytest.fixture
def z():
    rng = np.random.default_rng(0)
    values = rng.normal(scale=3.0, size=(50, 7))
    values[np.abs(values) < 1e-3] = 0.5  # keep away from the ReLU kink
    return values


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_reference_and_works_in_place(name, z):
    Z = z.copy()
    out = ACTIVATIONS[name].forward(Z)
    np.testing.assert_allclose(out, REFERENCE[name](z), rtol=1e-12, atol=1e-12)
    assert out is Z or np.shares_memory(out, Z)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_from_output_matches_finite_difference(name, z):
    act = ACTIVATIONS[name]
    h = 1e-6
    numeric = (REFERENCE[name](z + h) - REFERENCE[name](z - h)) / (2 * h)
    A = act.forward(z.copy())
    analytic = act.derivative(A, np.empty_like(A))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_output_stays_within_declared_range(name, z):
    act = ACTIVATIONS[name]
    out = act.forward(z.copy() * 100)
    assert out.min() >= act.low and out.max() <= act.high


def test_logistic_does_not_overflow_on_large_inputs():
    Z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=np.float32)
    with np.errstate(all="raise"):
        out = get_activation("sigmoid").forward(Z)
    np.testing.assert_allclose(out[0], [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-7)


def test_softmax_rows_sum_to_one_and_survive_huge_logits():
    Z = np.array([[1000.0, 1001.0, 999.0], [-5.0, 0.0, 5.0]])
    with np.errstate(all="raise"):
        P = softmax(Z.copy())
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    e = np.exp([-1.0, 0.0, -2.0])
    np.testing.assert_allclose(P[0], e / e.sum())


@pytest.mark.parametrize(
    "activation,bound",
    [
        # Glorot's bound for every activation, as scikit-learn: He's sqrt(6 / fan_in) for
        # ReLU started the default network too far from the targets to learn in a few steps.
        ("relu", np.sqrt(6 / (300 + 200))),
        ("leaky_relu", np.sqrt(6 / (300 + 200))),
        ("tanh", np.sqrt(6 / (300 + 200))),
        ("identity", np.sqrt(6 / (300 + 200))),
        ("logistic", np.sqrt(2 / (300 + 200))),  # scikit-learn's smaller bound
    ],
)
def test_initialisation_draws_weights_and_biases_in_the_bound(activation, bound):
    from nnpipe.core.mlp.initializers import init_bound, init_layer

    assert init_bound(300, 200, activation) == pytest.approx(bound)
    W, b = init_layer(np.random.default_rng(0), 300, 200, activation)
    assert W.shape == (300, 200) and b.shape == (200,)
    for values in (W, b):
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.97 * bound  # uses the whole range
    assert W.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)  # uniform(-b, b)
    assert b.std() == pytest.approx(bound / np.sqrt(3), rel=0.15)  # 200 draws only


def test_every_layer_starts_from_the_bound_of_the_hidden_activation():
    from nnpipe.core.mlp import MLPRegressor
    from nnpipe.core.mlp.initializers import init_bound

    for activation in ("relu", "logistic"):
        model = MLPRegressor(hidden_layer_sizes=(300, 200), activation=activation, max_iter=1)
        model._validate_params()
        model._initialize(40, 1)  # the weights before any step
        for W, b in zip(model.coefs_, model.intercepts_, strict=True):
            limit = init_bound(*W.shape, activation)
            assert np.abs(W).max() <= limit and np.abs(b).max() <= limit
            assert np.abs(W).max() > 0.9 * limit  # not He's larger, nor a smaller one
            if b.size > 1:  # the output layer's one bias can fall anywhere in the bound
                assert np.abs(b).max() > 0.9 * limit  # biases drawn too, not zeros
