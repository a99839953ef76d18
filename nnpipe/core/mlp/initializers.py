"""Weight and bias initialisation: Glorot-uniform bounds for every layer.

Every layer's weights and biases start in U(-b, b) with
b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010), the distribution
scikit-learn's MLP starts from. The gain is 1, except for networks whose hidden
activation is the logistic function: scikit-learn's bound there is
sqrt(2 / (fan_in + fan_out)), i.e. a gain of 1/sqrt(3).

Why not He's bound sqrt(6 / fan_in) for ReLU layers: it is made to keep the
activations' variance through deep ReLU stacks, but for the default network (one
hidden layer, Adam at lr 1e-3) it makes the hidden layer's weights
sqrt((fan_in + fan_out) / fan_in) times larger (3.3x for 10 inputs and 100 units).
On scikit-learn's regression check data (200 rows, one Adam step per epoch) the
initial outputs then spread 1.15 target standard deviations (0.35 with Glorot's
bound), the first-epoch loss was 1.48 (scikit-learn 0.59), and Adam, moving each
weight by about lr per step, had not undone that start after 50 epochs: train
R^2 0.54 against 0.74 with Glorot's bound and 0.75 for scikit-learn (8 seeds).
benchmarks/bench_quality.py compares more sets.

For logistic networks Glorot's plain bound learned faster than scikit-learn's
smaller one on that data (train R^2 0.38 against 0.26 after 50 epochs) but not on
the benchmark's classification sets, so scikit-learn's bound is kept.
"""

from __future__ import annotations

import numpy as np

# Gain on Glorot's bound, by the network's hidden activation (1 when absent).
GAINS = {"logistic": 1.0 / np.sqrt(3.0)}  # sqrt(2 / (fan_in + fan_out)), as scikit-learn


def init_bound(fan_in: int, fan_out: int, activation: str) -> float:
    """The bound b of U(-b, b) for a layer of a network with hidden ``activation``."""
    return float(GAINS.get(activation, 1.0) * np.sqrt(6.0 / (fan_in + fan_out)))


def init_layer(
    rng: np.random.Generator, fan_in: int, fan_out: int, activation: str
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (fan_in, fan_out) and biases (fan_out,), both U(-b, b) with one bound.

    ``activation`` is the network's hidden activation; it sets the gain of every
    layer, the output layer's included, as scikit-learn does.
    """
    bound = init_bound(fan_in, fan_out, activation)
    W = rng.uniform(-bound, bound, size=(fan_in, fan_out))  # (fan_in, fan_out)
    b = rng.uniform(-bound, bound, size=fan_out)  # (fan_out,)
    return W, b
