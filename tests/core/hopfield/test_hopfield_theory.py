"""What the theory says a Hopfield network of N = 500 neurons does, checked on random patterns.

Amit, Gutfreund & Sompolinsky (1985): Hebbian storage recalls almost perfectly at
low load and breaks down near alpha = P / N = 0.138; odd mixtures of stored
patterns are stable spurious states. Storkey (1997) stores more. The pseudo-inverse
rule makes every linearly independent pattern a fixed point for P < N.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.hopfield import HopfieldNetwork, capacity_curve

N = 500


def random_patterns(rng, n_patterns, n_neurons=N):
    return (2 * rng.integers(0, 2, (n_patterns, n_neurons)) - 1).astype(np.int8)


def test_hebbian_recall_is_exact_at_low_load_up_to_20_percent_noise():
    table = capacity_curve(N, [0.02, 0.05], [0.1, 0.2], trials=2, random_state=0)
    assert table["load"] == [0.02, 0.02, 0.05, 0.05]
    assert min(table["exact_recall"]) == 1.0
    assert min(table["mean_overlap"]) == 1.0


def test_hebbian_recall_degrades_past_the_critical_load():
    table = capacity_curve(N, [0.05, 0.2], [0.05], trials=1, random_state=1)
    low, high = (dict(zip(table, row, strict=True)) for row in zip(*table.values(), strict=True))
    assert low["exact_recall"] == 1.0
    assert high["exact_recall"] <= 0.05  # almost no probe comes back exactly
    assert high["mean_overlap"] < 0.8  # and the states wander far from the patterns


def test_storkey_holds_well_past_the_hebbian_limit():
    load, noise = 0.2, 0.05
    storkey = capacity_curve(N, [load], [noise], rule="storkey", trials=1, random_state=2)
    hebbian = capacity_curve(N, [load], [noise], rule="hebbian", trials=1, random_state=2)
    assert storkey["exact_recall"][0] >= 0.95
    assert hebbian["exact_recall"][0] <= 0.05


def test_pseudoinverse_makes_every_independent_pattern_a_fixed_point_at_half_load():
    patterns = random_patterns(np.random.default_rng(3), N // 2)
    assert np.linalg.matrix_rank(patterns.astype(np.float64)) == N // 2
    net = HopfieldNetwork(rule="pseudoinverse").fit(patterns)
    assert net.is_fixed_point(patterns).all()
    assert net.classify(patterns).counts()["stored"] == N // 2
    # Far past Hebbian's limit, recall from 5% noise still ends on the pattern.
    probes = patterns[:40].copy()
    probes[:, :25] *= -1
    np.testing.assert_array_equal(net.recall(probes).states, patterns[:40])


@pytest.mark.parametrize("rule", ["hebbian", "storkey", "pseudoinverse"])
def test_reversed_patterns_are_fixed_points(rule):
    patterns = random_patterns(np.random.default_rng(4), 25)
    net = HopfieldNetwork(rule=rule).fit(patterns)
    found = net.classify(-patterns)
    assert (found.labels == "reversed").all()
    assert found.indices == [(mu,) for mu in range(25)]


def test_symmetric_three_mixtures_are_stable_and_detected():
    rng = np.random.default_rng(7)
    x = random_patterns(rng, 10).astype(int)
    net = HopfieldNetwork(random_state=0).fit(x)
    mixtures = np.sign([x[a] + x[a + 1] + x[a + 2] for a in range(8)]).astype(np.int8)
    assert net.is_fixed_point(mixtures).all()
    # They attract: 2% noise recalls back to the same mixture.
    probes = mixtures.copy()
    probes[:, :10] *= -1
    result = net.recall(probes)
    found = net.classify(result)
    assert (found.labels == "mixture").all()
    assert found.indices == [(a, a + 1, a + 2) for a in range(8)]
    np.testing.assert_array_equal(result.states, mixtures)
