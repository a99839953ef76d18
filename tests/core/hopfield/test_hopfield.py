"""HopfieldNetwork: learning rules, weights, classification, errors and model files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nnpipe
from nnpipe.core.hopfield import (
    LABELS,
    RULES,
    CapacityWarning,
    HopfieldNetwork,
    classify,
    energy,
    to_bipolar,
)
from nnpipe.core.serialization import ModelFileError, load_npz, save_npz
from nnpipe.core.validation import NotFittedError


def random_patterns(rng, n_patterns, n_neurons):
    return (2 * rng.integers(0, 2, (n_patterns, n_neurons)) - 1).astype(np.int8)


@pytest.fixture
def patterns():
    return random_patterns(np.random.default_rng(0), 4, 30)


# -- learning rules ----------------------------------------------------------------


@pytest.mark.parametrize("rule", sorted(RULES))
def test_weights_are_symmetric_with_zero_diagonal(rule, patterns):
    W = HopfieldNetwork(rule=rule).fit(patterns).weights_
    np.testing.assert_array_equal(W, W.T)
    np.testing.assert_array_equal(np.diagonal(W), 0)
    assert np.abs(W).max() > 0


def test_hebbian_weights_are_the_outer_product_sum_over_n(patterns):
    W = HopfieldNetwork().fit(patterns).weights_
    x = patterns.astype(np.float64)
    expected = x.T @ x / x.shape[1]
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(W, expected, rtol=0, atol=1e-15)


def test_storkey_weights_follow_the_published_rule_element_by_element(patterns):
    n = patterns.shape[1]
    w = np.zeros((n, n))
    for x in patterns.astype(np.float64):
        # h_ij = sum over k != i, j of w_ik x_k, computed literally.
        h = np.array([[sum(w[i, k] * x[k] for k in range(n) if k not in (i, j)) for j in range(n)]
                      for i in range(n)])  # fmt: skip
        new = w.copy()
        for i in range(n):
            for j in range(n):
                if i != j:
                    new[i, j] += (x[i] * x[j] - x[i] * h[j, i] - h[i, j] * x[j]) / n
        w = new
    W = HopfieldNetwork(rule="storkey").fit(patterns).weights_
    np.testing.assert_allclose(W, w, rtol=1e-9, atol=1e-12)


def test_pseudoinverse_weights_project_onto_the_stored_patterns(patterns):
    x = patterns.astype(np.float64)
    projection = np.linalg.pinv(x) @ x
    np.fill_diagonal(projection, 0)
    W = HopfieldNetwork(rule="pseudoinverse").fit(patterns).weights_
    np.testing.assert_allclose(W, projection, atol=1e-9)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_partial_fit_matches_fit_on_all_patterns(rule, patterns):
    whole = HopfieldNetwork(rule=rule, random_state=0).fit(patterns)
    parts = HopfieldNetwork(rule=rule, random_state=0).fit(patterns[:1]).partial_fit(patterns[1:])
    np.testing.assert_array_equal(parts.patterns_, patterns)
    np.testing.assert_allclose(parts.weights_, whole.weights_, rtol=1e-9, atol=1e-12)
    assert parts.order_seed_ == whole.order_seed_


def test_bad_input_to_fit_keeps_the_fitted_network(patterns):
    net = HopfieldNetwork().fit(patterns)
    with pytest.raises(ValueError, match="row 0, column 0"):
        net.fit(np.zeros((2, 30)))
    np.testing.assert_array_equal(net.patterns_, patterns)
    with pytest.raises(ValueError, match="read-only"):
        net.weights_[0, 1] = 5.0


def test_fit_forgets_earlier_patterns(patterns):
    net = HopfieldNetwork().fit(patterns).fit(patterns[:2])
    assert net.n_patterns_ == 2
    np.testing.assert_array_equal(net.weights_, HopfieldNetwork().fit(patterns[:2]).weights_)


# -- states ------------------------------------------------------------------------


@pytest.mark.parametrize("rule", sorted(RULES))
def test_stored_and_reversed_patterns_are_fixed_points_and_named(rule, patterns):
    net = HopfieldNetwork(rule=rule).fit(patterns)
    found = net.classify(np.vstack([patterns, -patterns]))
    assert found.labels.tolist() == ["stored"] * 4 + ["reversed"] * 4
    assert found.indices == [(0,), (1,), (2,), (3,)] * 2
    assert found.signs == [(1,)] * 4 + [(-1,)] * 4
    np.testing.assert_allclose(found.overlap, [1] * 4 + [-1] * 4)


def test_classify_reports_mixture_members_and_signs():
    rng = np.random.default_rng(5)
    x = random_patterns(rng, 5, 200).astype(int)
    net = HopfieldNetwork().fit(x)
    mixtures = np.sign(np.array([x[0] + x[1] + x[2], x[4] - x[1] + x[3]])).astype(np.int8)
    found = net.classify(mixtures)
    assert found.labels.tolist() == ["mixture", "mixture"]
    assert found.indices == [(0, 1, 2), (1, 3, 4)]
    assert found.signs == [(1, 1, 1), (-1, 1, 1)]


def test_classify_tells_spurious_from_not_fixed_point():
    # Two neurons coupled positively: (1, 1) and (-1, -1) are the only fixed points.
    net = HopfieldNetwork.from_weights([[0, 1], [1, 0]], patterns=[[1, 1]])
    found = net.classify([[1, 1], [-1, -1], [1, -1]])
    assert found.labels.tolist() == ["stored", "reversed", "not_fixed_point"]
    # Without stored patterns a fixed point can only be spurious.
    bare = HopfieldNetwork.from_weights([[0, 1], [1, 0]])
    assert bare.classify([[1, 1], [1, -1]]).labels.tolist() == ["spurious", "not_fixed_point"]
    assert bare.classify([[1, 1]]).counts() == dict.fromkeys(LABELS, 0) | {"spurious": 1}


def test_classify_tolerates_a_few_bits_when_asked():
    # Neuron 2 is uncoupled (zero field keeps its state), so (1, 1, -1) is a fixed
    # point one bit away from the stored (1, 1, 1).
    net = HopfieldNetwork.from_weights([[0, 1, 0], [1, 0, 0], [0, 0, 0]], patterns=[[1, 1, 1]])
    near = [[1, 1, -1]]
    assert net.is_fixed_point(near).tolist() == [True]
    assert net.classify(near).labels.tolist() == ["spurious"]
    assert net.classify(near, max_hamming=1).labels.tolist() == ["stored"]
    assert net.classify([[-1, -1, 1]], max_hamming=1).labels.tolist() == ["reversed"]


def test_module_level_classify_and_energy_agree_with_the_network(patterns):
    net = HopfieldNetwork().fit(patterns)
    states = np.vstack([patterns, -patterns[:1]])
    found = classify(states, net.weights_, patterns)
    assert found.labels.tolist() == net.classify(states).labels.tolist()
    np.testing.assert_allclose(energy(states, net.weights_), net.energy(states), rtol=1e-12)
    assert energy(states[0], net.weights_) == pytest.approx(net.energy(states[:1])[0])


def test_to_bipolar_maps_zero_one_and_bool_data():
    np.testing.assert_array_equal(to_bipolar([[0, 1], [1, 0]]), [[-1, 1], [1, -1]])
    out = to_bipolar(np.array([[True, False]]))
    assert out.dtype == np.int8 and out.tolist() == [[1, -1]]


# -- errors ------------------------------------------------------------------------


def test_to_bipolar_names_row_column_and_value():
    with pytest.raises(ValueError, match=r"row 1, column 2 is 2"):
        to_bipolar([[0, 1, 1], [1, 0, 2]])
    with pytest.raises(ValueError, match=r"row 0, column 0 is -1"):
        to_bipolar([[-1, 1]])


def test_fit_rejects_non_bipolar_values_naming_row_column_and_value():
    with pytest.raises(ValueError, match=r"row 1, column 0 is 0.*to_bipolar"):
        HopfieldNetwork().fit([[1, -1], [0, 1]])
    with pytest.raises(ValueError, match=r"row 0, column 1 is nan"):
        HopfieldNetwork().fit([[1.0, np.nan]])
    with pytest.raises(ValueError, match=r"row 0, column 1 is 0.5"):
        HopfieldNetwork().fit([[1.0, 0.5]])
    with pytest.raises(ValueError, match="2-D"):
        HopfieldNetwork().fit([1, -1, 1])


def test_bad_parameters_name_the_allowed_values(patterns):
    with pytest.raises(ValueError, match="rule='oja'.*'hebbian', 'storkey', 'pseudoinverse'"):
        HopfieldNetwork(rule="oja").fit(patterns)
    with pytest.raises(ValueError, match="update='random'.*'async', 'sync'"):
        HopfieldNetwork(update="random").fit(patterns)
    with pytest.raises(ValueError, match="max_iter=0"):
        HopfieldNetwork(max_iter=0).fit(patterns)
    with pytest.raises(ValueError, match="n_threads=0"):
        HopfieldNetwork(n_threads=0).fit(patterns)
    with pytest.raises(ValueError, match="no parameter 'beta'; allowed: .*'n_threads'"):
        HopfieldNetwork().set_params(beta=2)


@pytest.mark.parametrize("update", ["async", "sync"])
def test_thread_count_does_not_change_recall(update, patterns):
    rng = np.random.default_rng(2)
    probes = random_patterns(rng, 50, 30)
    one = HopfieldNetwork(update=update, random_state=0, n_threads=1).fit(patterns)
    two = HopfieldNetwork(update=update, random_state=0, n_threads=2).fit(patterns)
    a, b = one.recall(probes), two.recall(probes)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.energy, b.energy)


def test_recall_checks_fit_and_neuron_count(patterns):
    with pytest.raises(NotFittedError):
        HopfieldNetwork().recall(patterns)
    net = HopfieldNetwork().fit(patterns)
    with pytest.raises(ValueError, match="probes have 29 neurons.*has 30"):
        net.recall(patterns[:, 1:])
    with pytest.raises(ValueError, match="probes must hold only -1 and \\+1: row 0, column 3"):
        net.recall(np.where(np.arange(30) == 3, 0, patterns[0])[None])
    with pytest.raises(ValueError, match="patterns have 29 neurons"):
        net.partial_fit(patterns[:, 1:])


def test_partial_fit_refuses_a_changed_rule_or_a_network_without_rule(patterns):
    net = HopfieldNetwork().fit(patterns)
    with pytest.raises(ValueError, match="rule 'hebbian', not 'storkey'"):
        net.set_params(rule="storkey").partial_fit(patterns)
    bare = HopfieldNetwork.from_weights(net.weights_)
    with pytest.raises(ValueError, match="rule None"):
        bare.partial_fit(patterns)


def test_from_weights_rejects_asymmetric_or_self_coupled_weights():
    with pytest.raises(ValueError, match=r"\[0, 1\] is 1.0 but \[1, 0\] is 2.0"):
        HopfieldNetwork.from_weights([[0, 1], [2, 0]])
    with pytest.raises(ValueError, match=r"weights\[1, 1\] is 3.0"):
        HopfieldNetwork.from_weights([[0, 1], [1, 3]])
    with pytest.raises(ValueError, match="square"):
        HopfieldNetwork.from_weights([[0, 1, 1], [1, 0, 1]])


# -- capacity warning ----------------------------------------------------------------


def test_hebbian_past_0138_n_warns_and_suggests_other_rules():
    rng = np.random.default_rng(0)
    with pytest.warns(CapacityWarning, match=r"load of 0\.150.*'storkey'.*'pseudoinverse'"):
        HopfieldNetwork().fit(random_patterns(rng, 15, 100))
    net = HopfieldNetwork().fit(random_patterns(rng, 13, 100))  # 0.13: no warning
    with pytest.warns(CapacityWarning):
        net.partial_fit(random_patterns(rng, 1, 100))


def test_capacity_warning_points_at_the_callers_line():
    rng = np.random.default_rng(0)
    with pytest.warns(CapacityWarning) as caught:
        HopfieldNetwork().fit(random_patterns(rng, 20, 100))
    assert caught[0].filename == __file__


def test_storkey_at_the_same_load_does_not_warn():
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HopfieldNetwork(rule="storkey").fit(random_patterns(rng, 15, 100))


def test_capacity_warning_is_a_user_warning_of_nnpipe():
    assert issubclass(CapacityWarning, UserWarning)
    assert CapacityWarning.__module__ == "nnpipe.core.hopfield"


# -- model files -------------------------------------------------------------------


@pytest.mark.parametrize("rule", sorted(RULES))
def test_save_load_round_trip_recalls_identically(tmp_path, rule, patterns):
    rng = np.random.default_rng(1)
    net = HopfieldNetwork(rule=rule, update="async", max_iter=7, random_state=3).fit(patterns)
    net.save(tmp_path / "net.npz")
    back = HopfieldNetwork.load(tmp_path / "net.npz")
    assert back.get_params() == net.get_params()
    assert back.order_seed_ == net.order_seed_
    np.testing.assert_array_equal(back.weights_, net.weights_)
    probes = random_patterns(rng, 20, 30)
    a, b = net.recall(probes), back.recall(probes)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.energy, b.energy)


def test_network_seeded_with_a_generator_saves_and_recalls_identically(tmp_path, patterns):
    net = HopfieldNetwork(random_state=np.random.default_rng(4)).fit(patterns)
    net.save(tmp_path / "net.npz")
    back = HopfieldNetwork.load(tmp_path / "net.npz")
    assert back.random_state is None
    np.testing.assert_array_equal(back.sweep_orders(3), net.sweep_orders(3))


def test_load_rejects_tampered_or_foreign_files(tmp_path, patterns):
    path = tmp_path / "net.npz"
    HopfieldNetwork().fit(patterns).save(path)
    arrays, meta = load_npz(path)
    bad = arrays["weights_q"].copy()
    bad[0, 1] += 1
    save_npz(tmp_path / "asym.npz", {**arrays, "weights_q": bad}, meta)
    with pytest.raises(ModelFileError, match="symmetric"):
        HopfieldNetwork.load(tmp_path / "asym.npz")
    sym = bad.copy()
    sym[1, 0] += 1
    save_npz(tmp_path / "other.npz", {**arrays, "weights_q": sym}, meta)
    with pytest.raises(ModelFileError, match="do not match the stored patterns"):
        HopfieldNetwork.load(tmp_path / "other.npz")
    save_npz(tmp_path / "scaler.npz", arrays, {**meta, "kind": "StandardScaler"})
    with pytest.raises(ModelFileError, match="expected a 'HopfieldNetwork'"):
        HopfieldNetwork.load(tmp_path / "scaler.npz")
    save_npz(tmp_path / "rule.npz", arrays, {**meta, "params": {"rule": "oja"}})
    with pytest.raises(ModelFileError, match="rule='oja'"):
        HopfieldNetwork.load(tmp_path / "rule.npz")


def test_top_level_export_and_pickle_round_trip(patterns):
    import pickle

    assert nnpipe.HopfieldNetwork is HopfieldNetwork
    net = HopfieldNetwork(random_state=0).fit(patterns)
    net.recall(patterns)  # builds the cached field engine, which is not pickled
    clone = pickle.loads(pickle.dumps(net))
    assert "_fields" not in clone.__dict__
    np.testing.assert_array_equal(clone.recall(patterns).states, patterns)
