"""Learning rules of the Hopfield network, and the exact fixed-point grid its weights live on.

Every rule keeps the weights as an integer-valued float64 matrix ``q`` and a
positive ``scale`` with ``weights = q / scale``. Integer values make every field
``h = s @ q`` an exact sum, whatever order BLAS adds it in, so a probe's recall
never depends on the other probes of its batch and energy is computed exactly.

- Hebbian (Hebb 1949; Hopfield 1982): ``q`` is the integer count
  ``sum_mu x_i x_j`` and ``scale = N``: no rounding at all.
- Storkey (1997) and the pseudo-inverse (projection) rule have real weights;
  they are rounded to a power-of-two grid fine enough that ``N * N * max|q| <=
  2**52`` (relative step about ``N**2 / 2**52``, e.g. 2e-10 at N = 1000).

A rule is ``learn(q, scale, new, stored) -> (q, scale)``: ``q`` is None on the
first call, ``new`` the patterns being added and ``stored`` all patterns so far
(``new`` included), both int8 in {-1, +1} of shape (n_patterns, n_neurons).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Exact float64 sums need |partial sums| <= 2**53; one bit of headroom.
_EXACT_BITS = 52


@dataclass(frozen=True)
class LearningRule:
    """A registered learning rule and what the network may rely on about it."""

    name: str
    learn: Callable[..., tuple[np.ndarray, float]]
    incremental: bool  # partial_fit builds on the current weights (else recomputes)
    low_rank: bool  # weights == (X^T X - P I) / scale: fields can go through the patterns
    reference: str


def to_grid(weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Round real symmetric weights to the exact power-of-two grid: ``(q, scale)``."""
    n = weights.shape[0]
    weights = 0.5 * (weights + weights.T)  # exact symmetry before rounding
    np.fill_diagonal(weights, 0.0)
    largest = float(np.max(np.abs(weights))) if weights.size else 0.0
    if largest == 0.0:
        return np.zeros_like(weights), 1.0
    exponent = math.floor(_EXACT_BITS - math.log2(n * n * largest))
    scale = math.ldexp(1.0, exponent)
    q = np.rint(weights * scale)  # power-of-two scaling is exact; only rint rounds
    return q, scale


def hebbian(q, scale, new, stored):
    """Hebb's outer-product rule: ``w_ij = (1/N) sum_mu x_i x_j``, zero diagonal, exact."""
    n = new.shape[1]
    x = new.astype(np.float64)  # (P_new, N)
    counts = x.T @ x  # (N, N) integers, exact in float64
    if q is not None:
        counts += q
    np.fill_diagonal(counts, 0.0)
    return counts, float(n)


def storkey(q, scale, new, stored):
    """Storkey's (1997) incremental rule with local fields ``h_ij = sum_{k != i, j} w_ik x_k``.

    Per pattern ``x``: ``w_ij += (x_i x_j - x_i h_ji - h_ij x_j) / N`` for i != j. With a
    zero diagonal ``h_ij = h_i - w_ij x_j`` (``h = W x``), so with x_j**2 = 1 the step is
    ``W <- offdiag(c W + R / N)``, ``c = 1 + 2/N``, ``R = x (x - h)^T - h x^T``.
    """
    n = new.shape[1]
    weights = np.zeros((n, n)) if q is None else q / scale
    for lo in range(0, new.shape[0], _STORKEY_BLOCK):
        weights = _storkey_block(weights, new[lo : lo + _STORKEY_BLOCK].astype(np.float64).T)
    return to_grid(weights)


# Patterns learned per matrix product in the Storkey rule.
_STORKEY_BLOCK = 64


def _storkey_block(W0: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Learn the columns of ``X`` (N, B) in order, starting from ``W0`` (N, N).

    Since offdiag(c offdiag(A) + R) = offdiag(c A + R), after t patterns
    ``W_t = offdiag(A_t)`` with ``A_t = c^t W0 + sum_{s<=t} c^(t-s) R_s / N``: each field
    ``h_t = A_{t-1} x_t - diag(A_{t-1}) x_t`` needs only ``W0 @ X`` and the earlier
    rank-2 terms, and the new weights are one product of (N, 2B) by (2B, N).
    """
    n, b = X.shape
    c = 1.0 + 2.0 / n
    base = W0 @ X  # (N, B)
    H = np.empty_like(X)  # (N, B) fields h_s
    diag = np.zeros(n)  # diag(A_{t-1})
    for t in range(b):
        x = X[:, t]
        # A_{t-1} x = c^t W0 x + sum_{s<t} c^(t-1-s) (x_s ((x_s - h_s) . x) - h_s (x_s . x)) / N
        coef = c ** (t - 1 - np.arange(t)) / n  # (t,)
        Xs, Hs = X[:, :t], H[:, :t]
        a_x = c**t * base[:, t] + Xs @ (coef * ((Xs - Hs).T @ x)) - Hs @ (coef * (Xs.T @ x))
        H[:, t] = a_x - diag * x
        diag = c * diag + (1.0 - 2.0 * x * H[:, t]) / n
    coef = c ** (b - 1 - np.arange(b)) / n  # (B,)
    left = np.concatenate([X * coef, -H * coef], axis=1)  # (N, 2B)
    right = np.concatenate([X - H, X], axis=1)  # (N, 2B)
    W = c**b * W0 + left @ right.T
    np.fill_diagonal(W, 0.0)
    return W


def pseudoinverse(q, scale, new, stored):
    """Projection rule ``W = X^+ X`` (Personnaz et al. 1985; Kanter & Sompolinsky 1987).

    ``W`` projects onto the span of the stored patterns, so ``W x = x`` for each; with
    the diagonal removed the field is ``(1 - W_ii) x_i``, the same sign while W_ii < 1,
    i.e. every linearly independent pattern is a fixed point for P < N. Recomputed
    from all stored patterns on every call.
    """
    x = stored.astype(np.float64)  # (P, N)
    gram = x @ x.T  # (P, P)
    projection = x.T @ (np.linalg.pinv(gram, hermitian=True) @ x)  # (N, N)
    return to_grid(projection)


RULES: dict[str, LearningRule] = {
    "hebbian": LearningRule("hebbian", hebbian, True, True, "Hebb 1949; Hopfield 1982"),
    "storkey": LearningRule("storkey", storkey, True, False, "Storkey 1997"),
    "pseudoinverse": LearningRule(
        "pseudoinverse", pseudoinverse, False, False, "Personnaz, Guyon, Dreyfus 1985"
    ),
}
