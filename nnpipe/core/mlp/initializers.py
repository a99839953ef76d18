"""Weight initialisation chosen by activation: He for ReLU-like, Glorot otherwise."""

from __future__ import annotations

import numpy as np


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, gain: float = 1.0):
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    bound = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


def he_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, gain: float = 1.0):
    """U(-b, b) with b = gain * sqrt(6 / fan_in), keeping ReLU activations' variance."""
    bound = gain * np.sqrt(6.0 / fan_in)
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


# activation -> (initialiser, gain). Glorot's gain for the logistic function is
# sqrt(2) larger because its slope at 0 is 1/4 instead of 1 (scikit-learn does this).
INITIALIZERS = {
    "identity": (glorot_uniform, 1.0),
    "tanh": (glorot_uniform, 1.0),
    "logistic": (glorot_uniform, np.sqrt(2.0)),
    "relu": (he_uniform, 1.0),
    "leaky_relu": (he_uniform, 1.0),
}


def init_layer(rng: np.random.Generator, fan_in: int, fan_out: int, activation: str):
    """Weights (fan_in, fan_out) for a layer feeding ``activation``; biases start at zero."""
    init, gain = INITIALIZERS.get(activation, (glorot_uniform, 1.0))
    return init(rng, fan_in, fan_out, gain)
