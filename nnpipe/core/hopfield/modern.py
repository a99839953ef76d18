"""Continuous modern Hopfield network (Ramsauer et al. 2020, "Hopfield Networks is All You Need").

Stored patterns are the rows of ``X`` (P, N). A state ``xi`` is updated by

    xi <- X^T softmax(beta X xi)

which is attention with the patterns as keys and values. The energy

    E(xi) = -lse(beta, X xi) + 1/2 xi . xi + log(P) / beta + 1/2 max_mu |x_mu|^2

never rises under this update, and for well separated patterns one update lands
next to the nearest pattern. The number of patterns it can store grows
exponentially with N, far beyond the 0.138 N of the classical Hebbian network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..mlp.activations import softmax
from ..params import Params
from ..serialization import (
    ModelFileError,
    load_npz,
    params_from_json,
    params_to_json,
    require,
    save_npz,
)
from ..validation import (
    check_array,
    check_is_fitted,
    check_n_features,
    check_positive,
    resolve_dtype,
)

# Query rows per matrix product: bounds the (rows, P) attention matrix to ~64 MB.
_CHUNK_ELEMENTS = 1 << 24


@dataclass
class ModernRecallResult:
    """Outcome of recalling a batch of queries.

    Attributes
    ----------
    states : ndarray, shape (n_queries, n_features)
        Final states (model dtype).
    converged : ndarray of bool, shape (n_queries,)
        The last update moved no coordinate by more than ``tol``.
    n_iter : ndarray of int32, shape (n_queries,)
        Updates applied.
    energy : ndarray of float64, shape (n_queries,)
        Energy of the final state.
    nearest : ndarray of int64, shape (n_queries,)
        Stored pattern with the largest attention weight in the final state.
    """

    states: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    energy: np.ndarray
    nearest: np.ndarray

    def __len__(self) -> int:
        return int(self.states.shape[0])


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=1)
    return top + np.log(np.exp(logits - top[:, None]).sum(axis=1))


class ModernHopfield(Params):
    """Continuous modern Hopfield network: batched ``xi <- X^T softmax(beta X xi)``.

    Parameters
    ----------
    beta : float, default 1.0
        Inverse temperature; larger values make the attention sharper.
    max_iter : int, default 10
        Most updates per query (one is usually enough).
    tol : float, default 1e-6
        A query has converged when no coordinate moves by more than ``tol`` times
        (1 + its largest magnitude).
    dtype : {'float32', 'float64'}, default 'float32'

    Attributes
    ----------
    patterns_ : ndarray, shape (n_patterns, n_features)
    n_features_in_ : int
    """

    def __init__(
        self, beta: float = 1.0, max_iter: int = 10, tol: float = 1e-6, dtype: Any = "float32"
    ):
        self.beta = beta
        self.max_iter = max_iter
        self.tol = tol
        self.dtype = dtype

    def _check_params(self) -> np.dtype:
        check_positive("beta", self.beta)
        check_positive("max_iter", self.max_iter, integer=True)
        check_positive("tol", self.tol, allow_zero=True)
        return resolve_dtype(self.dtype)

    # -- storing -----------------------------------------------------------------
    def fit(self, patterns: Any) -> ModernHopfield:
        """Store ``patterns`` (n_patterns, n_features), real-valued, replacing any stored."""
        self.__dict__.pop("patterns_", None)
        return self.partial_fit(patterns)

    def partial_fit(self, patterns: Any) -> ModernHopfield:
        """Append ``patterns`` (n_patterns, n_features) to the stored ones."""
        dtype = self._check_params()
        X = check_array(patterns, name="patterns", dtype=dtype)
        if hasattr(self, "patterns_"):
            check_n_features(X, self.n_features_in_, type(self).__name__)
            X = np.concatenate([self.patterns_.astype(dtype), X])
        self.patterns_ = X
        self.n_features_in_ = int(X.shape[1])
        return self

    # -- recall ------------------------------------------------------------------
    def _check_queries(self, queries: Any, name: str) -> np.ndarray:
        check_is_fitted(self, "patterns_")
        Q = check_array(queries, name=name, dtype=self.patterns_.dtype)
        check_n_features(Q, self.n_features_in_, type(self).__name__)
        return Q

    def attention(self, queries: Any) -> np.ndarray:
        """Softmax weights over the stored patterns for each query (n_queries, n_patterns)."""
        self._check_params()
        Q = self._check_queries(queries, "queries")
        return softmax(self.beta * (Q @ self.patterns_.T))

    def recall(self, queries: Any, *, batch_size: int | None = None) -> ModernRecallResult:
        """Update each query (n_queries, n_features) until it stops moving or ``max_iter``."""
        self._check_params()
        Q = self._check_queries(queries, "queries")
        if batch_size is not None:
            check_positive("batch_size", batch_size, integer=True)
        rows = batch_size or max(1, _CHUNK_ELEMENTS // max(self.patterns_.shape[0], 1))
        n = Q.shape[0]
        out = ModernRecallResult(
            states=np.empty_like(Q),
            converged=np.zeros(n, dtype=bool),
            n_iter=np.zeros(n, dtype=np.int32),
            energy=np.empty(n),
            nearest=np.empty(n, dtype=np.int64),
        )
        for lo in range(0, n, rows):
            self._recall_chunk(Q[lo : lo + rows], out, lo)
        out.energy[:] = self.energy(out.states)
        out.nearest[:] = self._nearest(out.states)
        return out

    def _recall_chunk(self, Q: np.ndarray, out: ModernRecallResult, offset: int) -> None:
        X = self.patterns_  # (P, N)
        xi = Q.copy()  # (B, N)
        active = np.arange(Q.shape[0])
        for _ in range(self.max_iter):
            new = softmax(self.beta * (xi @ X.T)) @ X  # (B, P) @ (P, N)
            out.n_iter[offset + active] += 1
            step = np.abs(new - xi).max(axis=1)
            done = step <= self.tol * (1.0 + np.abs(new).max(axis=1))
            xi = new
            if done.any():
                out.states[offset + active[done]] = xi[done]
                out.converged[offset + active[done]] = True
                xi, active = xi[~done], active[~done]
            if active.size == 0:
                return
        out.states[offset + active] = xi

    def _nearest(self, states: np.ndarray) -> np.ndarray:
        nearest = np.empty(states.shape[0], dtype=np.int64)
        rows = max(1, _CHUNK_ELEMENTS // max(self.patterns_.shape[0], 1))
        for lo in range(0, states.shape[0], rows):
            nearest[lo : lo + rows] = np.argmax(states[lo : lo + rows] @ self.patterns_.T, axis=1)
        return nearest

    def energy(self, states: Any) -> np.ndarray:
        """Energy of each state (n_states, n_features), in float64."""
        self._check_params()
        S = self._check_queries(states, "states").astype(np.float64)
        X = self.patterns_.astype(np.float64)
        beta = float(self.beta)
        largest = 0.5 * float(np.max(np.einsum("ij,ij->i", X, X)))
        lse = _logsumexp(beta * (S @ X.T)) / beta
        return -lse + 0.5 * np.einsum("ij,ij->i", S, S) + np.log(X.shape[0]) / beta + largest

    # -- persistence -------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the stored patterns and parameters to ``.npz`` atomically (no pickle)."""
        check_is_fitted(self, "patterns_")
        params = params_to_json(self.get_params(), type(self).__name__)
        save_npz(
            path, {"patterns": self.patterns_}, {"kind": type(self).__name__, "params": params}
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> ModernHopfield:
        """Read a model written by :meth:`save`."""
        arrays, meta = load_npz(path, kind=cls.__name__)
        patterns = require(arrays, "patterns", (None, None), path)
        try:
            net = cls(**params_from_json(meta.get("params", {})))
            dtype = net._check_params()
            net.patterns_ = check_array(patterns, name="patterns", dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{str(path)!r} is not a valid ModernHopfield: {exc}") from exc
        net.n_features_in_ = int(patterns.shape[1])
        return net
