"""Storage capacity of a Hopfield network, measured: recall of noisy stored patterns vs. load.

For each load ``alpha = P / N`` and trial, ``P`` random patterns are stored; each
probe is a stored pattern with exactly ``round(noise * N)`` bits flipped. The table
reports how many probes come back exactly and the mean overlap ``s . x / N`` with
the pattern they came from (1 = perfect). Hebbian storage breaks down near
``alpha = 0.138`` (Amit, Gutfreund & Sompolinsky 1985).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..validation import check_option, check_positive, check_rng
from .network import UPDATES, HopfieldNetwork
from .rules import RULES

COLUMNS = (
    "rule",
    "update",
    "n_neurons",
    "load",
    "n_patterns",
    "noise",
    "n_flipped",
    "n_probes",
    "exact_recall",
    "mean_overlap",
    "converged",
)


def capacity_curve(
    n_neurons: int,
    loads: Any,
    noise_levels: Any = (0.1,),
    *,
    rule: str = "hebbian",
    update: str = "async",
    trials: int = 3,
    probes_per_trial: int | None = None,
    max_iter: int = 100,
    random_state: Any = None,
) -> dict[str, list]:
    """Exact-recall fraction and mean overlap per (load, noise level): a columnar table.

    Parameters
    ----------
    n_neurons : int
        Network size N (>= 2).
    loads : sequence of float
        Loads ``alpha = P / N``; ``P = max(1, round(alpha * N))``.
    noise_levels : sequence of float in [0, 1]
        Fraction of bits flipped in each probe.
    rule, update, max_iter
        As for :class:`~nnpipe.core.hopfield.HopfieldNetwork`.
    trials : int
        Independent pattern sets per load.
    probes_per_trial : int, optional
        Probes per trial and noise level, cycling through the stored patterns;
        default one per stored pattern.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    dict of lists
        One entry per :data:`COLUMNS` name, one row per (load, noise level), in input
        order: JSON-able, and ready for ``plt.plot(table["load"], table["exact_recall"])``.
    """
    check_option("rule", rule, RULES)
    check_option("update", update, UPDATES)
    check_positive("trials", trials, integer=True)
    check_positive("max_iter", max_iter, integer=True)
    if probes_per_trial is not None:
        check_positive("probes_per_trial", probes_per_trial, integer=True)
    loads, noise_levels = _check_grid(n_neurons, loads, noise_levels)
    rng = check_rng(random_state)

    table: dict[str, list] = {name: [] for name in COLUMNS}
    for alpha in loads:
        n_patterns = max(1, round(alpha * n_neurons))
        n_probes = probes_per_trial or n_patterns
        exact = np.zeros(len(noise_levels))
        overlap = np.zeros(len(noise_levels))
        converged = np.zeros(len(noise_levels))
        for _ in range(trials):
            patterns = (2 * rng.integers(0, 2, (n_patterns, n_neurons)) - 1).astype(np.int8)
            net = HopfieldNetwork(rule, update, max_iter, random_state=rng)
            net._fit(patterns)  # overloading it is the point here
            e, o, c = _trial(net, patterns, n_probes, noise_levels, rng)
            exact += e
            overlap += o
            converged += c
        for i, noise in enumerate(noise_levels):
            row = {
                "rule": rule,
                "update": update,
                "n_neurons": int(n_neurons),
                "load": float(alpha),
                "n_patterns": int(n_patterns),
                "noise": float(noise),
                "n_flipped": _n_flipped(noise, n_neurons),
                "n_probes": int(trials * n_probes),
                "exact_recall": float(exact[i] / trials),
                "mean_overlap": float(overlap[i] / trials),
                "converged": float(converged[i] / trials),
            }
            for name in COLUMNS:
                table[name].append(row[name])
    return table


def _trial(
    net: HopfieldNetwork,
    patterns: np.ndarray,
    n_probes: int,
    noise_levels: list[float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact-recall fraction, mean overlap and converged fraction per noise level."""
    n_patterns, n_neurons = patterns.shape
    source = np.arange(n_probes) % n_patterns
    # All noise levels in one recall call: one batch, one set of sweeps.
    probes = np.concatenate(
        [_flip(patterns[source], noise, rng) for noise in noise_levels]
    )  # (n_levels * n_probes, N)
    result = net.recall(probes)
    target = np.tile(patterns[source], (len(noise_levels), 1))
    ok = (result.states == target).all(axis=1).reshape(len(noise_levels), n_probes)
    m = np.einsum("ij,ij->i", result.states, target, dtype=np.int64) / n_neurons
    return (
        ok.mean(axis=1),
        m.reshape(len(noise_levels), n_probes).mean(axis=1),
        result.converged.reshape(len(noise_levels), n_probes).mean(axis=1),
    )


def _check_grid(n_neurons: int, loads: Any, noise_levels: Any) -> tuple[list[float], list[float]]:
    check_positive("n_neurons", n_neurons, integer=True)
    if n_neurons < 2:
        raise ValueError(f"n_neurons={n_neurons} is too small; need at least 2")
    loads = _as_list("loads", loads)
    noise_levels = _as_list("noise_levels", noise_levels)
    for alpha in loads:
        check_positive("load", alpha)
    for noise in noise_levels:
        if not (isinstance(noise, (int, float)) and 0 <= noise <= 1):
            raise ValueError(f"noise level {noise!r} is invalid; expected a number in [0, 1]")
    return loads, noise_levels


def _as_list(name: str, values: Any) -> list[float]:
    values = np.atleast_1d(np.asarray(values, dtype=float)).tolist()
    if not values:
        raise ValueError(f"{name} is empty; give at least one value")
    return values


def _n_flipped(noise: float, n_neurons: int) -> int:
    return int(round(noise * n_neurons))


def _flip(patterns: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Copies of ``patterns`` (n, N) with exactly ``round(noise * N)`` random bits flipped."""
    n, n_neurons = patterns.shape
    k = _n_flipped(noise, n_neurons)
    probes = patterns.copy()
    if k:
        where = np.argsort(rng.random((n, n_neurons)), axis=1)[:, :k]  # (n, k) distinct
        np.put_along_axis(probes, where, -np.take_along_axis(probes, where, axis=1), axis=1)
    return probes
