"""One optimizer step recomputed by hand; schedules; state save/restore."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp.optimizers import SGD, Adam


@pytest.fixture
def pg():
    rng = np.random.default_rng(0)
    return rng.normal(size=6), rng.normal(size=6)


def test_plain_sgd_step(pg):
    p, g = pg
    opt = SGD(6, np.float64, learning_rate_init=0.1, momentum=0.0)
    new = p.copy()
    opt.update(new, g)
    np.testing.assert_allclose(new, p - 0.1 * g)


def test_momentum_sgd_two_steps(pg):
    p, g = pg
    opt = SGD(6, np.float64, learning_rate_init=0.1, momentum=0.9, nesterov=False)
    new = p.copy()
    opt.update(new, g)
    opt.update(new, 2 * g)
    v1 = -0.1 * g
    v2 = 0.9 * v1 - 0.1 * (2 * g)
    np.testing.assert_allclose(new, p + v1 + v2)


def test_nesterov_sgd_two_steps(pg):
    p, g = pg
    opt = SGD(6, np.float64, learning_rate_init=0.1, momentum=0.9, nesterov=True)
    new = p.copy()
    opt.update(new, g)
    opt.update(new, 2 * g)
    v1 = -0.1 * g
    step1 = 0.9 * v1 - 0.1 * g
    v2 = 0.9 * v1 - 0.1 * (2 * g)
    step2 = 0.9 * v2 - 0.1 * (2 * g)
    np.testing.assert_allclose(new, p + step1 + step2)


def test_adam_two_steps(pg):
    p, g = pg
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    opt = Adam(6, np.float64, learning_rate_init=lr, beta_1=b1, beta_2=b2, epsilon=eps)
    new = p.copy()
    opt.update(new, g)
    opt.update(new, -3 * g)
    expected, m, v = p.copy(), np.zeros(6), np.zeros(6)
    for t, grad in ((1, g), (2, -3 * g)):
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        step = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        expected -= step * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(new, expected, rtol=1e-12)
    np.testing.assert_allclose(opt.first_moment, m, rtol=1e-12)
    np.testing.assert_allclose(opt.second_moment, v, rtol=1e-12)


def test_float32_step_stays_float32(pg):
    p, g = (a.astype(np.float32) for a in pg)
    opt = Adam(6, np.float32)
    opt.update(p, g)
    assert p.dtype == np.float32 and opt.m.dtype == np.float32 and opt.v.dtype == np.float32


def test_invscaling_and_adaptive_schedules():
    opt = SGD(2, np.float64, learning_rate_init=0.5, learning_rate="invscaling", power_t=0.5)
    opt.epoch_end(samples_seen=99)
    assert opt.learning_rate == pytest.approx(0.5 / 10)
    ada = SGD(2, np.float64, learning_rate_init=0.5, learning_rate="adaptive")
    assert ada.on_plateau() is False and ada.learning_rate == pytest.approx(0.1)
    const = SGD(2, np.float64, learning_rate_init=0.5)
    assert const.on_plateau() is True and const.learning_rate == 0.5


def test_state_round_trip_continues_identically(pg):
    p, g = pg
    a = Adam(6, np.float64, learning_rate_init=0.01)
    pa = p.copy()
    a.update(pa, g)
    arrays, meta = a.state()
    b = Adam(6, np.float64, learning_rate_init=0.01)
    b.load_state({k: v.copy() for k, v in arrays.items()}, meta)
    pb = pa.copy()
    a.update(pa, g)
    b.update(pb, g)
    np.testing.assert_array_equal(pa, pb)


@pytest.mark.parametrize("make", [lambda n: Adam(n, np.float64), lambda n: SGD(n, np.float64)])
def test_blockwise_update_of_a_long_vector_equals_one_whole_vector_pass(make):
    from nnpipe.core.mlp.optimizers import BLOCK

    n = 4 * BLOCK + 123
    rng = np.random.default_rng(5)
    p, g = rng.normal(size=n), rng.normal(size=n)
    blockwise, whole = make(n), make(n)
    p_block, p_whole = p.copy(), p.copy()
    for grad in (g, -g):
        blockwise.update(p_block, grad)  # goes block by block
        whole.t += 1
        whole._apply(p_whole, grad, slice(None))  # one pass over everything
    np.testing.assert_array_equal(p_block, p_whole)
