"""Recall dynamics against a plain per-probe, per-neuron loop; energy; batch independence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnpipe.core.hopfield import RULES, HopfieldNetwork, RecallResult, energy


def random_patterns(rng, n_patterns, n_neurons):
    return (2 * rng.integers(0, 2, (n_patterns, n_neurons)) - 1).astype(np.int8)


def noisy(rng, patterns, n_flips):
    probes = patterns.copy()
    for row in probes:
        where = rng.choice(row.size, n_flips, replace=False)
        row[where] *= -1
    return probes


def reference_async(net, probe, max_iter):
    """One probe, one neuron at a time, in the network's sweep orders; energies after each flip."""
    W = net.weights_q_  # integer-valued: exact sums, same decisions as the network
    s = probe.astype(np.float64)
    energies = [-0.5 * s @ W @ s]
    orders = net.sweep_orders(max_iter)
    for sweep in range(max_iter):
        changed = False
        for i in orders[sweep]:
            h = W[i] @ s
            if h * s[i] < 0:
                s[i] = -s[i]
                changed = True
                energies.append(-0.5 * s @ W @ s)
        if not changed:
            return s.astype(np.int8), True, sweep + 1, energies
    return s.astype(np.int8), False, max_iter, energies


def reference_sync(weights, probe, max_iter):
    s = probe.astype(np.float64)
    previous = None
    for step in range(1, max_iter + 1):
        h = weights @ s
        new = np.where(h > 0, 1.0, np.where(h < 0, -1.0, s))
        if (new == s).all():
            return s.astype(np.int8), 1, step
        if previous is not None and (new == previous).all():
            return s.astype(np.int8), 2, step
        previous, s = s, new
    return s.astype(np.int8), 0, max_iter


# (rule, n_patterns) pairs covering the low-rank Hebbian engine (2P < N), the dense
# float32 Hebbian engine and the dense float64 engine of the real-valued rules.
CASES = [("hebbian", 4), ("hebbian", 30), ("storkey", 6), ("pseudoinverse", 8)]


@pytest.mark.parametrize("rule,n_patterns", CASES)
def test_async_recall_equals_one_neuron_at_a_time_reference(rule, n_patterns):
    rng = np.random.default_rng(3)
    patterns = random_patterns(rng, n_patterns, 48)
    net = HopfieldNetwork(rule=rule, max_iter=30, random_state=5)
    net._fit(patterns)
    probes = np.vstack([noisy(rng, patterns[:4], 10), random_patterns(rng, 12, 48)])
    result = net.recall(probes)
    for p, probe in enumerate(probes):
        state, converged, n_sweeps, energies = reference_async(net, probe, 30)
        np.testing.assert_array_equal(result.states[p], state)
        assert result.converged[p] == converged
        assert result.n_sweeps[p] == n_sweeps
        assert result.energy[p] == pytest.approx(energies[-1] / net.weights_scale_, rel=1e-12)


@pytest.mark.parametrize("rule,n_patterns", CASES)
def test_sync_recall_equals_parallel_update_reference(rule, n_patterns):
    rng = np.random.default_rng(4)
    patterns = random_patterns(rng, n_patterns, 40)
    net = HopfieldNetwork(rule=rule, update="sync", max_iter=25, random_state=1)
    net._fit(patterns)
    probes = np.vstack([noisy(rng, patterns[:3], 8), random_patterns(rng, 20, 40)])
    result = net.recall(probes)
    for p, probe in enumerate(probes):
        state, period, steps = reference_sync(net.weights_q_, probe, 25)
        np.testing.assert_array_equal(result.states[p], state)
        assert (result.period[p], result.n_sweeps[p]) == (period, steps)
        assert result.converged[p] == (period == 1)


def test_two_neuron_sync_example_is_a_two_cycle():
    net = HopfieldNetwork.from_weights([[0, 1], [1, 0]], update="sync")
    result = net.recall([[1, -1]])
    assert result.period[0] == 2 and not result.converged[0]
    assert result.n_sweeps[0] == 2
    # The cycle's other state is one parallel step away; neither is a fixed point.
    assert result.states[0].tolist() in ([-1, 1], [1, -1])
    assert net.classify(result).labels.tolist() == ["not_fixed_point"]
    # The same network updated asynchronously settles into a fixed point.
    settled = net.set_params(update="async").recall([[1, -1]])
    assert settled.converged[0] and settled.states[0].tolist() in ([1, 1], [-1, -1])


@pytest.mark.parametrize("update", ["async", "sync"])
@pytest.mark.parametrize("rule,n_patterns", CASES)
def test_recall_of_a_probe_does_not_depend_on_its_batch(rule, n_patterns, update):
    rng = np.random.default_rng(11)
    patterns = random_patterns(rng, n_patterns, 64)
    net = HopfieldNetwork(rule=rule, update=update, random_state=2)
    net._fit(patterns)
    probes = np.vstack([noisy(rng, patterns, 15), random_patterns(rng, 30, 64)])
    whole = net.recall(probes)
    for batch_size in (1, 7):
        part = net.recall(probes, batch_size=batch_size)
        for name in ("states", "converged", "n_sweeps", "energy", "period"):
            np.testing.assert_array_equal(getattr(part, name), getattr(whole, name))
    # Shuffled into uneven pieces, as partitions of a dataset would be.
    order = rng.permutation(len(probes))
    pieces = np.array_split(order, [5, 6, 20])
    joined = RecallResult.concatenate([net.recall(probes[idx]) for idx in pieces])
    back = np.argsort(np.concatenate(pieces))
    np.testing.assert_array_equal(joined.states[back], whole.states)
    np.testing.assert_array_equal(joined.energy[back], whole.energy)
    empty = net.recall(probes[:0])
    assert len(empty) == 0 and empty.states.shape == (0, 64)


def test_low_rank_and_dense_fields_give_the_same_recall():
    rng = np.random.default_rng(8)
    patterns = random_patterns(rng, 5, 80)
    low_rank = HopfieldNetwork(random_state=9).fit(patterns)
    dense = HopfieldNetwork.from_weights(low_rank.weights_, random_state=9)
    assert type(low_rank._engine()).__name__ == "LowRankFields"
    assert type(dense._engine()).__name__ == "DenseFields"
    probes = np.vstack([noisy(rng, patterns, 25), random_patterns(rng, 40, 80)])
    a, b = low_rank.recall(probes), dense.recall(probes)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.n_sweeps, b.n_sweeps)
    np.testing.assert_allclose(a.energy, b.energy, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    rule=st.sampled_from(sorted(RULES)),
    n_neurons=st.integers(3, 40),
    load=st.floats(0.05, 0.9),
    seed=st.integers(0, 2**32 - 1),
)
def test_energy_never_rises_under_async_updates(rule, n_neurons, load, seed):
    rng = np.random.default_rng(seed)
    n_patterns = max(1, int(load * n_neurons))
    net = HopfieldNetwork(rule=rule, max_iter=12, random_state=seed)
    net._fit(random_patterns(rng, n_patterns, n_neurons))
    probes = random_patterns(rng, 6, n_neurons)
    # Flip by flip, in the network's own order (exact integer arithmetic).
    for probe in probes:
        _, _, _, energies = reference_async(net, probe, 12)
        assert all(b < a for a, b in zip(energies, energies[1:], strict=False))
    # Sweep by sweep, through the vectorised recall itself.
    previous = net.energy(probes)
    for n_sweeps in range(1, 5):
        current = net.set_params(max_iter=n_sweeps).recall(probes).energy
        assert (current <= previous).all()
        previous = current


def test_reported_energy_matches_the_weights():
    rng = np.random.default_rng(1)
    patterns = random_patterns(rng, 6, 50)
    for rule in RULES:
        net = HopfieldNetwork(rule=rule, random_state=0).fit(patterns)
        result = net.recall(noisy(rng, patterns, 10))
        np.testing.assert_allclose(result.energy, net.energy(result.states), rtol=1e-12)
        np.testing.assert_allclose(
            result.energy, energy(result.states, net.weights_), rtol=1e-9, atol=1e-9
        )


def test_max_iter_reached_is_reported_as_not_converged():
    rng = np.random.default_rng(2)
    patterns = random_patterns(rng, 3, 60)
    net = HopfieldNetwork(max_iter=1, random_state=0).fit(patterns)
    result = net.recall(noisy(rng, patterns, 6))
    # One sweep corrects the probes but cannot also confirm that nothing changes.
    assert not result.converged.any() and (result.n_sweeps == 1).all()
    assert (result.period == 0).all()
    np.testing.assert_array_equal(result.states, patterns)


@pytest.mark.parametrize("rule,n_patterns", [("hebbian", 6), ("storkey", 6)])
def test_both_block_strategies_give_the_same_recall(monkeypatch, rule, n_patterns):
    from nnpipe.core.hopfield import dynamics as hopfield_dynamics

    rng = np.random.default_rng(12)
    patterns = random_patterns(rng, n_patterns, 150)  # three blocks, the last one short
    net = HopfieldNetwork(rule=rule, random_state=4).fit(patterns)
    probes = np.vstack([noisy(rng, patterns, 30), random_patterns(rng, 30, 150)])
    results = []
    for flips_per_probe in (0, 10**9):  # always neuron by neuron / always in rounds
        monkeypatch.setattr(hopfield_dynamics, "_ROUNDS_FLIPS_PER_PROBE", flips_per_probe)
        results.append(net.recall(probes))
    a, b = results
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.n_sweeps, b.n_sweeps)
    np.testing.assert_array_equal(a.energy, b.energy)
    for p in (0, 7, 35):
        assert np.array_equal(reference_async(net, probes[p], 100)[0], a.states[p])


def test_work_arrays_kept_between_calls_and_threads_do_not_change_results():
    rng = np.random.default_rng(5)
    patterns = random_patterns(rng, 4, 64)
    probes = np.vstack([noisy(rng, patterns, 20) for _ in range(25)])  # 100 probes
    fresh = [HopfieldNetwork(random_state=3).fit(patterns) for _ in range(2)]
    expected = [net.recall(p) for net, p in zip(fresh, (probes, probes[:9]), strict=True)]
    net = HopfieldNetwork(random_state=3).fit(patterns)
    # Large, then small: the small call reuses (the start of) the large call's arrays.
    for _ in range(2):
        for p, want in zip((probes, probes[:9]), expected, strict=True):
            np.testing.assert_array_equal(net.recall(p).states, want.states)
    # Threads recalling at once on one network each have arrays of their own.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(net.recall, [probes] * 8))
    for result in results:
        np.testing.assert_array_equal(result.states, expected[0].states)
        np.testing.assert_array_equal(result.n_sweeps, expected[0].n_sweeps)


def test_work_arrays_of_a_large_batch_are_not_kept(monkeypatch):
    import nnpipe.core.hopfield.network as network_module
    from nnpipe.core.hopfield.dynamics import thread_scratch

    rng = np.random.default_rng(6)
    patterns = random_patterns(rng, 4, 64)
    net = HopfieldNetwork(random_state=0).fit(patterns)
    net.recall(noisy(rng, patterns, 20))
    kept = thread_scratch(net._engine()).nbytes
    assert kept > 0
    monkeypatch.setattr(network_module, "_KEEP_SCRATCH_BYTES", kept // 2)
    net.recall(noisy(rng, patterns, 20))
    assert thread_scratch(net._engine()).nbytes == 0


@pytest.mark.parametrize("rule,n_patterns", CASES)
def test_fixed_points_are_found_the_same_in_every_chunk(rule, n_patterns):
    # 2500 states of 40 neurons go through several chunks of the fixed-point check.
    rng = np.random.default_rng(8)
    patterns = random_patterns(rng, n_patterns, 40)
    net = HopfieldNetwork(rule=rule, random_state=1)
    net._fit(patterns)
    probes = random_patterns(rng, 2500, 40)
    states = np.vstack([net.recall(probes[:500]).states, probes])  # settled, then random
    W = net.weights_q_
    expected = ~((states @ W) * states < 0).any(axis=1)  # no neuron's field disagrees
    assert expected[:500].any() and not expected.all()
    np.testing.assert_array_equal(net.is_fixed_point(states), expected)
