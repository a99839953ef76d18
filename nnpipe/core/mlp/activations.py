"""Activation functions, each with its derivative beside it.

Every forward function works in place on the pre-activation ``Z`` (so the
training loop allocates nothing) and returns it. Every derivative takes the
activation *output* ``A`` (the only thing kept from the forward pass) and writes
``dA/dZ`` into ``out``. ``ACTIVATIONS`` pairs each function with its derivative
and its closed output range (``low``, ``high``), used to refuse an output
activation that cannot reach the targets.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

LEAKY_SLOPE = 0.01


def identity(Z: np.ndarray) -> np.ndarray:
    """f(z) = z."""
    return Z


def identity_derivative(A: np.ndarray, out: np.ndarray) -> np.ndarray:
    """f'(z) = 1."""
    out.fill(1.0)
    return out


def logistic(Z: np.ndarray) -> np.ndarray:
    """f(z) = 1 / (1 + exp(-z)), computed as (1 + tanh(z/2)) / 2 so it never overflows."""
    Z *= 0.5
    np.tanh(Z, out=Z)
    Z *= 0.5
    Z += 0.5
    return Z


def logistic_derivative(A: np.ndarray, out: np.ndarray) -> np.ndarray:
    """f'(z) = f(z) (1 - f(z))."""
    np.subtract(1.0, A, out=out)
    out *= A
    return out


def tanh(Z: np.ndarray) -> np.ndarray:
    """f(z) = tanh(z)."""
    return np.tanh(Z, out=Z)


def tanh_derivative(A: np.ndarray, out: np.ndarray) -> np.ndarray:
    """f'(z) = 1 - tanh(z)^2."""
    np.multiply(A, A, out=out)
    np.subtract(1.0, out, out=out)
    return out


def relu(Z: np.ndarray) -> np.ndarray:
    """f(z) = max(z, 0)."""
    return np.maximum(Z, 0.0, out=Z)


def relu_derivative(A: np.ndarray, out: np.ndarray) -> np.ndarray:
    """f'(z) = 1 where z > 0 else 0 (the output is positive exactly where z is)."""
    np.greater(A, 0.0, out=out, casting="unsafe")
    return out


def leaky_relu(Z: np.ndarray) -> np.ndarray:
    """f(z) = z where z > 0 else 0.01 z."""
    return np.maximum(Z, Z * LEAKY_SLOPE, out=Z)


def leaky_relu_derivative(A: np.ndarray, out: np.ndarray) -> np.ndarray:
    """f'(z) = 1 where z > 0 else 0.01 (the output keeps the sign of z)."""
    np.greater(A, 0.0, out=out, casting="unsafe")
    out *= 1.0 - LEAKY_SLOPE
    out += LEAKY_SLOPE
    return out


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise exp(z) / sum(exp(z)), computed in place in ``Z`` and returned.

    Shifted by the row maximum first so exp never overflows.
    """
    Z -= Z.max(axis=1, keepdims=True)
    np.exp(Z, out=Z)
    Z /= Z.sum(axis=1, keepdims=True)
    return Z


class Activation(NamedTuple):
    """A function, its derivative (from the output) and its closed output range."""

    forward: object
    derivative: object
    low: float
    high: float


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation(identity, identity_derivative, -np.inf, np.inf),
    "logistic": Activation(logistic, logistic_derivative, 0.0, 1.0),
    "tanh": Activation(tanh, tanh_derivative, -1.0, 1.0),
    "relu": Activation(relu, relu_derivative, 0.0, np.inf),
    "leaky_relu": Activation(leaky_relu, leaky_relu_derivative, -np.inf, np.inf),
}
# Aliases users type; they resolve to the same entry.
ALIASES = {"sigmoid": "logistic"}
# softmax has a full Jacobian, not an elementwise derivative: it is only used as the
# multiclass output paired with log-loss, where the two together give (p - y).
OUTPUT_ONLY = {"softmax": softmax}


def get_activation(name: str) -> Activation:
    """Look up an activation by name or alias (caller has validated the name)."""
    return ACTIVATIONS[ALIASES.get(name, name)]


def activation_names() -> list[str]:
    """Names accepted for hidden and regression-output activations."""
    return [*ACTIVATIONS, *ALIASES]
