"""ModernHopfield: the attention update, its energy, exponential capacity, files and errors."""

from __future__ import annotations

import numpy as np
import pytest

import nnpipe
from nnpipe.core.hopfield import HEBBIAN_CAPACITY, ModernHopfield
from nnpipe.core.serialization import ModelFileError, load_npz, save_npz
from nnpipe.core.validation import NotFittedError


def bipolar(rng, n, d):
    return rng.choice([-1.0, 1.0], size=(n, d))


def test_one_update_is_patterns_weighted_by_softmax_of_similarity():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 5))
    xi = rng.standard_normal((3, 5))
    net = ModernHopfield(beta=0.7, max_iter=1, dtype="float64").fit(X)
    logits = 0.7 * xi @ X.T
    weights = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(net.recall(xi).states, weights @ X, rtol=1e-12)
    np.testing.assert_allclose(net.attention(xi), weights, rtol=1e-12)


def test_large_beta_does_not_overflow():
    rng = np.random.default_rng(1)
    X = bipolar(rng, 20, 50)
    net = ModernHopfield(beta=1e4).fit(X)
    result = net.recall(X[:5] * 100)
    assert np.isfinite(result.states).all() and np.isfinite(result.energy).all()
    np.testing.assert_allclose(result.states, X[:5], atol=1e-6)


def test_recall_far_beyond_0138_n():
    # 2000 patterns in 64 dimensions: a load of 31, 227x the Hebbian limit.
    rng = np.random.default_rng(2)
    n_features, n_patterns = 64, 2000
    assert n_patterns / n_features > 200 * HEBBIAN_CAPACITY
    X = bipolar(rng, n_patterns, n_features)
    net = ModernHopfield(beta=1.0).fit(X)
    probes = X[:400].copy()
    probes[:, :10] *= -1  # 15% of the bits flipped
    result = net.recall(probes)
    np.testing.assert_array_equal(np.sign(result.states), X[:400])
    np.testing.assert_array_equal(result.nearest, np.arange(400))
    assert result.converged.all() and (result.n_iter <= 3).all()


def test_energy_never_rises_under_the_update():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 16))
    net = ModernHopfield(beta=0.5, dtype="float64").fit(X)
    xi = rng.standard_normal((50, 16)) * 2
    previous = net.energy(xi)
    for _ in range(5):
        xi = net.set_params(max_iter=1).recall(xi).states
        current = net.energy(xi)
        assert (current <= previous + 1e-9).all()
        previous = current


def test_batch_size_only_bounds_memory():
    rng = np.random.default_rng(4)
    net = ModernHopfield(beta=2.0, dtype="float64").fit(bipolar(rng, 40, 20))
    queries = rng.standard_normal((33, 20))
    a, b = net.recall(queries), net.recall(queries, batch_size=4)
    np.testing.assert_allclose(a.states, b.states, rtol=1e-12)
    np.testing.assert_array_equal(a.nearest, b.nearest)


def test_partial_fit_appends_patterns():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((6, 4))
    net = ModernHopfield().fit(X[:2]).partial_fit(X[2:])
    np.testing.assert_allclose(net.patterns_, X.astype(np.float32))
    with pytest.raises(ValueError, match="3 features"):
        net.partial_fit(X[:, :3])


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    net = ModernHopfield(beta=3.0, max_iter=4, dtype="float64").fit(rng.standard_normal((8, 5)))
    net.save(tmp_path / "m.npz")
    back = ModernHopfield.load(tmp_path / "m.npz")
    assert back.get_params() == {"beta": 3.0, "max_iter": 4, "tol": 1e-6, "dtype": "float64"}
    q = rng.standard_normal((3, 5))
    np.testing.assert_array_equal(back.recall(q).states, net.recall(q).states)
    arrays, meta = load_npz(tmp_path / "m.npz")
    save_npz(tmp_path / "bad.npz", arrays, {**meta, "params": {"beta": -1}})
    with pytest.raises(ModelFileError, match="beta=-1"):
        ModernHopfield.load(tmp_path / "bad.npz")


def test_errors_name_the_problem():
    with pytest.raises(NotFittedError):
        ModernHopfield().recall([[1.0, 2.0]])
    with pytest.raises(ValueError, match="beta=0"):
        ModernHopfield(beta=0).fit([[1.0, 2.0]])
    net = ModernHopfield().fit([[1.0, 2.0]])
    with pytest.raises(ValueError, match="3 features"):
        net.recall([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="NaN"):
        net.recall([[np.nan, 1.0]])
    assert nnpipe.ModernHopfield is ModernHopfield
