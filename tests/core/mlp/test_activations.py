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
        ("relu", np.sqrt(6 / 300)),  # He: fan_in only
        ("leaky_relu", np.sqrt(6 / 300)),
        ("tanh", np.sqrt(6 / (300 + 200))),  # Glorot
        ("identity", np.sqrt(6 / (300 + 200))),
        ("logistic", np.sqrt(2) * np.sqrt(6 / (300 + 200))),
    ],
)
def test_initialisation_is_chosen_by_activation(activation, bound):
    from nnpipe.core.mlp.initializers import init_layer

    W = init_layer(np.random.default_rng(0), 300, 200, activation)
    assert W.shape == (300, 200)
    assert np.abs(W).max() <= bound
    assert np.abs(W).max() > 0.99 * bound  # uses the whole range
    assert W.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)  # uniform(-b, b)
