"""Loss functions, each with its gradient beside it.

``LOSSES[name].value(y, p)`` is the mean over samples of the per-sample loss
summed over outputs. ``LOSSES[name].gradient(y, p, out)`` writes the per-sample
derivative ``dloss/dp`` into ``out`` (not divided by the sample count; the
network does that once).
Regression losses work on scaled targets, so the Huber threshold of 1 means one
standard deviation with the default target scaling.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

HUBER_DELTA = 1.0
# Probabilities are clipped this far from 0 and 1 before taking logs.
_PROB_EPS = {np.dtype(np.float32): 1e-7, np.dtype(np.float64): 1e-15}


def squared_error(y: np.ndarray, p: np.ndarray) -> float:
    """0.5 * sum over outputs of (p - y)^2, averaged over samples."""
    r = (p - y).ravel()
    return 0.5 * float(np.dot(r, r)) / y.shape[0]


def squared_error_gradient(y: np.ndarray, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    """d/dp = p - y."""
    return np.subtract(p, y, out=out)


def huber(y: np.ndarray, p: np.ndarray) -> float:
    """0.5 r^2 for |r| <= 1, |r| - 0.5 beyond: squared near the target, absolute far away."""
    r = np.abs(p - y)
    quad = np.minimum(r, HUBER_DELTA)
    return float((0.5 * quad * quad + HUBER_DELTA * (r - quad)).sum()) / y.shape[0]


def huber_gradient(y: np.ndarray, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    """d/dp = clip(p - y, -1, 1)."""
    np.subtract(p, y, out=out)
    return np.clip(out, -HUBER_DELTA, HUBER_DELTA, out=out)


def absolute_error(y: np.ndarray, p: np.ndarray) -> float:
    """|p - y| summed over outputs, averaged over samples."""
    return float(np.abs(p - y).sum()) / y.shape[0]


def absolute_error_gradient(y: np.ndarray, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    """d/dp = sign(p - y) (0 at the kink)."""
    np.subtract(p, y, out=out)
    return np.sign(out, out=out)


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Cross-entropy: one logistic column (binary) or one column per class (softmax)."""
    eps = _PROB_EPS.get(p.dtype, 1e-15)
    pc = np.clip(p, eps, 1.0 - eps)
    if p.shape[1] == 1:
        total = np.dot(y.ravel(), np.log(pc).ravel()) + np.dot(
            (1.0 - y).ravel(), np.log1p(-pc).ravel()
        )
    else:
        total = np.dot(y.ravel(), np.log(pc).ravel())
    return -float(total) / y.shape[0]


def log_loss_gradient(y: np.ndarray, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    """d/dp = -y/p + (1-y)/(1-p) (binary) or -y/p (softmax columns)."""
    eps = _PROB_EPS.get(p.dtype, 1e-15)
    pc = np.clip(p, eps, 1.0 - eps)
    np.divide(y, pc, out=out)
    np.negative(out, out=out)
    if p.shape[1] == 1:
        out += (1.0 - y) / (1.0 - pc)
    return out


class Loss(NamedTuple):
    """A loss, its gradient with respect to the prediction, and what it is for."""

    value: object
    gradient: object
    task: str


LOSSES: dict[str, Loss] = {
    "squared_error": Loss(squared_error, squared_error_gradient, "regression"),
    "huber": Loss(huber, huber_gradient, "regression"),
    "absolute_error": Loss(absolute_error, absolute_error_gradient, "regression"),
    "log_loss": Loss(log_loss, log_loss_gradient, "classification"),
}

# (loss, output activation) pairs whose chained gradient simplifies to p - y, so
# the output delta skips both the loss gradient and the activation derivative.
CANONICAL_PAIRS = {
    ("squared_error", "identity"),
    ("log_loss", "logistic"),
    ("log_loss", "softmax"),
}


def regression_losses() -> list[str]:
    """Names of the losses a regressor accepts."""
    return [k for k, v in LOSSES.items() if v.task == "regression"]
