"""The classic single sigmoid neuron: no bias, full-batch, error-weighted derivative.

It reproduces the well-known nine-line NumPy example exactly: weights start at
``2 * RandomState(1).random_sample((3, 1)) - 1`` and each of 10 000 iterations does
``w += X.T @ ((y - out) * out * (1 - out))``. The seeded legacy ``RandomState`` is
used (not the global NumPy RNG) because that is what fixes the published numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .validation import check_array, check_is_fitted, check_n_features, check_positive

# The example's training set: the output is the first input column.
TRAINING_INPUTS = np.array([[0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=np.float64)
TRAINING_OUTPUTS = np.array([[0, 1, 1, 0]], dtype=np.float64).T


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z))."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_derivative(out: np.ndarray) -> np.ndarray:
    """Slope of the sigmoid at the point whose output is ``out``: out (1 - out)."""
    return out * (1.0 - out)


class SigmoidNeuron:
    """One neuron, weights (n_inputs, 1), no bias, trained by full-batch gradient steps.

    Parameters
    ----------
    n_iter : int, default 10000
        Full-batch updates.
    random_state : int, default 1
        Seed of the ``RandomState`` drawing the initial weights.
    """

    def __init__(self, n_iter: int = 10_000, random_state: int = 1):
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, X: Any = TRAINING_INPUTS, y: Any = TRAINING_OUTPUTS) -> SigmoidNeuron:
        """Train on X (n_samples, n_inputs) and y (n_samples,) or (n_samples, 1) in [0, 1]."""
        check_positive("n_iter", self.n_iter, integer=True)
        X = check_array(X, dtype=np.float64)
        y = check_array(np.asarray(y).reshape(-1, 1), name="y", dtype=np.float64)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        rs = np.random.RandomState(self.random_state)
        w = 2 * rs.random_sample((X.shape[1], 1)) - 1  # (n_inputs, 1)
        for _ in range(self.n_iter):
            out = sigmoid(X @ w)  # (n_samples, 1)
            w += X.T @ ((y - out) * sigmoid_derivative(out))
        self.weights_ = w
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Neuron output in (0, 1): (n_samples,) for 2-D X, a float for one 1-D input row."""
        check_is_fitted(self, "weights_")
        arr = np.asarray(X, dtype=np.float64)
        single = arr.ndim == 1
        X = check_array(arr.reshape(1, -1) if single else arr, dtype=np.float64)
        check_n_features(X, self.n_features_in_, "SigmoidNeuron")
        out = sigmoid(X @ self.weights_).ravel()
        return float(out[0]) if single else out
