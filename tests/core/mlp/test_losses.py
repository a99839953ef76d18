"""Losses: values against direct formulas, gradients against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp.losses import LOSSES


def data(name, rng):
    if name == "log_loss":
        y = np.eye(4)[rng.integers(0, 4, size=20)]  # one-hot (20, 4)
        p = rng.dirichlet(np.ones(4), size=20)
        return y, p
    return rng.normal(size=(20, 3)), rng.normal(scale=2.0, size=(20, 3))


def test_values_match_direct_formulas():
    rng = np.random.default_rng(1)
    y, p = data("squared_error", rng)
    r = p - y
    assert LOSSES["squared_error"].value(y, p) == pytest.approx(0.5 * (r**2).sum() / 20)
    assert LOSSES["absolute_error"].value(y, p) == pytest.approx(np.abs(r).sum() / 20)
    a = np.abs(r)
    huber = np.where(a <= 1, 0.5 * a**2, a - 0.5).sum() / 20
    assert LOSSES["huber"].value(y, p) == pytest.approx(huber)
    yc, pc = data("log_loss", rng)
    assert LOSSES["log_loss"].value(yc, pc) == pytest.approx(-np.log(pc[yc == 1]).mean())
    yb = np.array([[0.0], [1.0], [1.0]])
    pb = np.array([[0.2], [0.7], [0.9]])
    expected = -(np.log(0.8) + np.log(0.7) + np.log(0.9)) / 3
    assert LOSSES["log_loss"].value(yb, pb) == pytest.approx(expected)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_matches_finite_difference(name):
    rng = np.random.default_rng(2)
    y, p = data(name, rng)
    loss = LOSSES[name]
    analytic = loss.gradient(y, p, np.empty_like(p)) / y.shape[0]  # of the mean
    numeric = np.empty_like(p)
    h = 1e-6
    for idx in np.ndindex(p.shape):
        up, down = p.copy(), p.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (loss.value(y, up) - loss.value(y, down)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_log_loss_is_finite_at_saturated_probabilities():
    y = np.array([[1.0], [0.0]], dtype=np.float32)
    p = np.array([[0.0], [1.0]], dtype=np.float32)
    assert np.isfinite(LOSSES["log_loss"].value(y, p))
    assert np.isfinite(LOSSES["log_loss"].gradient(y, p, np.empty_like(p))).all()
