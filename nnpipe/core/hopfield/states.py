"""Bipolar data, the Hopfield energy, and the kinds of state a network ends in.

A recalled state is one of (Amit, Gutfreund & Sompolinsky 1985):

- ``stored``: a stored pattern;
- ``reversed``: a stored pattern with every bit flipped (``-1/2 s W s`` is even in s,
  so reversed patterns are fixed points as well);
- ``mixture``: ``sign(+-x_a +- x_b +- x_c ...)`` of an odd number of stored patterns;
- ``spurious``: any other fixed point;
- ``not_fixed_point``: some neuron would still flip (a sync 2-cycle, or recall stopped
  at ``max_iter``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

LABELS = ("stored", "reversed", "mixture", "spurious", "not_fixed_point")

# Rows of states checked against candidate mixtures at once (bounds a
# (rows, order, N) temporary).
_MIXTURE_CHUNK = 512


def check_bipolar(data: Any, name: str = "patterns", *, allow_empty: bool = False) -> np.ndarray:
    """Return ``data`` (n, N) as int8 after checking every value is -1 or +1."""
    arr = _as_2d(data, name, allow_empty=allow_empty)
    bad = ~((arr == 1) | (arr == -1))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        value = arr[row, col].item()
        hint = " (0/1 data: convert it with to_bipolar first)" if value in (0, True, False) else ""
        raise ValueError(
            f"{name} must hold only -1 and +1: row {row}, column {col} is {value!r}"
            f" ({int(bad.sum())} bad values in all){hint}"
        )
    return arr.astype(np.int8)


def to_bipolar(data: Any) -> np.ndarray:
    """Map {0, 1} (or bool) data (n, N) to {-1, +1} as int8; other values are an error."""
    arr = _as_2d(data, "data")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"to_bipolar expects only 0 and 1: row {row}, column {col} is {arr[row, col].item()!r}"
            f" ({int(bad.sum())} bad values in all)"
        )
    return (2 * arr.astype(np.int8) - 1).astype(np.int8)


def _as_2d(data: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    arr = np.asarray(data)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_rows, n_neurons); got shape {arr.shape}"
            + (". Use x.reshape(1, -1) for a single row." if arr.ndim == 1 else "")
        )
    if (arr.shape[0] == 0 and not allow_empty) or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return arr


def energy(states: Any, weights: Any) -> np.ndarray:
    """Hopfield energy ``-1/2 s W s`` of each state (n, N) for weights (N, N), in float64.

    A single state (N,) gives a float. With integer-valued weights (a network's
    ``weights_q_``) every product and sum is an exact integer in float64.
    """
    S = np.asarray(states, dtype=np.float64)
    W = np.asarray(weights, dtype=np.float64)
    if S.ndim == 1:
        return -0.5 * float(S @ W @ S)
    return -0.5 * np.einsum("ij,ij->i", S @ W, S)


def energy_trajectories(network: Any, probes: Any, max_sweeps: int = 10) -> np.ndarray:
    """Energy of each probe after 0, 1, ..., ``max_sweeps`` sweeps (n_probes, max_sweeps + 1).

    Uses only the network's public ``recall``/``energy``: recall with ``max_iter=k``
    visits neurons in the same seeded order as any longer recall, so the state after
    k sweeps is the same whichever run it comes from. Costs O(max_sweeps^2) sweeps:
    meant for the handful of probes a plot shows.
    """
    if not isinstance(max_sweeps, int) or max_sweeps < 1:
        raise ValueError(f"max_sweeps={max_sweeps!r} must be a positive integer")
    probes = np.asarray(probes)
    columns = [np.asarray(network.energy(probes), dtype=np.float64)]
    stepper = copy.copy(network)  # the caller's network keeps its max_iter
    for k in range(1, max_sweeps + 1):
        stepper.max_iter = k
        columns.append(np.asarray(stepper.recall(probes).energy, dtype=np.float64))
    return np.stack(columns, axis=1)  # (n_probes, max_sweeps + 1)


@dataclass
class Classification:
    """Kind of each state, with the stored patterns it is made of.

    Attributes
    ----------
    labels : ndarray of str, shape (n_states,)
        One of :data:`LABELS`.
    codes : ndarray of int8, shape (n_states,)
        The same as positions in :data:`LABELS` (compact for files).
    indices : list of tuple of int
        Stored patterns involved: ``(mu,)`` for stored/reversed, the members of a
        mixture, ``()`` otherwise.
    signs : list of tuple of int
        Sign of each member: ``(1,)`` stored, ``(-1,)`` reversed, mixture signs.
    nearest : ndarray of int64, shape (n_states,)
        Pattern with the largest absolute overlap (-1 when nothing is stored).
    overlap : ndarray of float64, shape (n_states,)
        Signed overlap ``s . x_nearest / N`` with that pattern.
    """

    labels: np.ndarray
    codes: np.ndarray
    indices: list[tuple[int, ...]]
    signs: list[tuple[int, ...]]
    nearest: np.ndarray
    overlap: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        """Number of states of each kind (every label present, zeros included)."""
        return {label: int((self.codes == i).sum()) for i, label in enumerate(LABELS)}


def classify_states(
    states: np.ndarray,
    patterns: np.ndarray,
    flipping: np.ndarray,
    *,
    max_hamming: int = 0,
    max_order: int = 7,
) -> Classification:
    """Classify int8 states given the stored patterns and which states are not fixed points.

    A state within ``max_hamming`` bits of a pattern (or mixture) counts as equal to it.
    Mixtures of up to ``max_order`` patterns are looked for among those with the
    largest overlaps.
    """
    n, n_neurons = states.shape
    codes = np.full(n, LABELS.index("spurious"), dtype=np.int8)
    codes[flipping] = LABELS.index("not_fixed_point")
    indices: list[tuple[int, ...]] = [()] * n
    signs: list[tuple[int, ...]] = [()] * n
    if patterns.shape[0] == 0:
        nearest = np.full(n, -1, dtype=np.int64)
        overlap = np.zeros(n)
    else:
        X = patterns.astype(np.float32)  # (P, N)
        M = states.astype(np.float32) @ X.T  # (n, P) exact integer overlaps
        nearest = np.argmax(np.abs(M), axis=1)
        best = M[np.arange(n), nearest]  # (n,)
        overlap = best.astype(np.float64) / n_neurons
        distance = (n_neurons - np.abs(best)) / 2  # Hamming distance to +-x_nearest
        fixed = ~flipping
        for label, sign in (("stored", 1), ("reversed", -1)):
            hit = np.flatnonzero(fixed & (distance <= max_hamming) & (np.sign(best) == sign))
            codes[hit] = LABELS.index(label)
            for i in hit:
                indices[i] = (int(nearest[i]),)
                signs[i] = (sign,)
        rest = np.flatnonzero(codes == LABELS.index("spurious"))
        _find_mixtures(states, X, M, rest, max_hamming, max_order, codes, indices, signs)
    return Classification(
        labels=np.array(LABELS, dtype=str)[codes],
        codes=codes,
        indices=indices,
        signs=signs,
        nearest=nearest.astype(np.int64),
        overlap=overlap,
    )


def _find_mixtures(states, X, M, rows, max_hamming, max_order, codes, indices, signs) -> None:
    n_patterns = X.shape[0]
    orders = [k for k in range(3, min(max_order, n_patterns) + 1, 2)]
    if not orders or rows.size == 0:
        return
    ranked = np.argsort(-np.abs(M[rows]), axis=1, kind="stable")[:, : orders[-1]]  # (r, k_max)
    for lo in range(0, rows.size, _MIXTURE_CHUNK):
        chunk = rows[lo : lo + _MIXTURE_CHUNK]
        top = ranked[lo : lo + _MIXTURE_CHUNK]  # (c, k_max)
        target = states[chunk]  # (c, N)
        open_ = np.ones(chunk.size, dtype=bool)
        for k in orders:
            members = top[:, :k]  # (c, k)
            eps = np.where(np.take_along_axis(M[chunk], members, axis=1) < 0, -1.0, 1.0)
            mix = np.einsum("ck,ckn->cn", eps.astype(np.float32), X[members])  # (c, N), odd sums
            mismatched = (np.where(mix > 0, 1, -1) != target).sum(axis=1)
            hit = np.flatnonzero(open_ & (mismatched <= max_hamming))
            for j in hit:
                order = np.argsort(members[j])
                codes[chunk[j]] = LABELS.index("mixture")
                indices[chunk[j]] = tuple(int(m) for m in members[j][order])
                signs[chunk[j]] = tuple(int(e) for e in eps[j][order])
            open_[hit] = False
            if not open_.any():
                break


def classify(
    states: Any,
    weights: Any,
    patterns: Any,
    *,
    max_hamming: int = 0,
    max_order: int = 7,
) -> Classification:
    """Classify states (n, N) of a network with ``weights`` (N, N) storing ``patterns`` (P, N).

    Fixed points are judged with float64 fields; for exact decisions on a fitted
    network use :meth:`HopfieldNetwork.classify`.
    """
    S = check_bipolar(states, "states")
    X = check_bipolar(patterns, "patterns")
    W = np.asarray(weights, dtype=np.float64)
    if W.shape != (S.shape[1], S.shape[1]) or X.shape[1] != S.shape[1]:
        raise ValueError(
            f"shapes disagree: states {S.shape}, weights {W.shape}, patterns {X.shape}"
        )
    flipping = ((S @ W) * S < 0).any(axis=1)
    return classify_states(S, X, flipping, max_hamming=max_hamming, max_order=max_order)
