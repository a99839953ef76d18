"""One flat parameter vector per network, with per-layer views and batch buffers.

All weights and biases live in one flat array (coefficients first, then
intercepts) and the per-layer matrices are views into it; gradients likewise.
The optimizer then updates everything in a few vector operations, and the
training loop reuses the preallocated activation and delta buffers of a
:class:`BatchCache`, so a step is the matrix products plus a handful of in-place
passes.
"""

from __future__ import annotations

import numpy as np


def n_parameters(sizes: list[int]) -> int:
    """Length of the flat vector for layer sizes [n_in, hidden..., n_out]."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def split_flat(flat: np.ndarray, sizes: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Views of ``flat`` as coefficient matrices (n_i, n_{i+1}) and intercept vectors."""
    coefs, intercepts, pos = [], [], 0
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        coefs.append(flat[pos : pos + a * b].reshape(a, b))
        pos += a * b
    for b in sizes[1:]:
        intercepts.append(flat[pos : pos + b])
        pos += b
    return coefs, intercepts


class BatchCache:
    """Views into the flat parameter/gradient arrays and per-batch work buffers."""

    def __init__(self, params: np.ndarray, grads: np.ndarray, sizes: list[int], rows: int):
        dtype = params.dtype
        self.rows = rows
        self.coefs, self.intercepts = split_flat(params, sizes)
        self.coef_grads, self.intercept_grads = split_flat(grads, sizes)
        self.n_coef = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.x = np.empty((rows, sizes[0]), dtype=dtype)  # (batch, n_in)
        self.y = np.empty((rows, sizes[-1]), dtype=dtype)  # (batch, n_out)
        self.acts = [np.empty((rows, s), dtype=dtype) for s in sizes[1:]]  # (batch, n_i)
        self.deltas = [np.empty((rows, s), dtype=dtype) for s in sizes[1:]]
        self.tmps = [np.empty((rows, s), dtype=dtype) for s in sizes[1:]]
        self.penalty_tmp = np.empty(self.n_coef, dtype=dtype)
        self.ones = np.ones(rows, dtype=dtype)  # bias gradients as one GEMV: ones @ delta
