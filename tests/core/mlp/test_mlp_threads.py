"""BLAS thread choice: one thread for small layers, never more than allowed, user override."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from nnpipe.core.mlp import MLPRegressor
from nnpipe.core.threads import (
    MULTITHREAD_MIN_MACS,
    blas_threads,
    choose_n_threads,
    current_blas_threads,
    usable_cores,
)


def test_small_layers_train_on_one_thread():
    assert choose_n_threads([64, 256, 256, 1], 256) == 1


def test_large_layers_use_at_most_the_cores_and_the_current_blas_limit():
    n = choose_n_threads([512, 1024, 1024, 1], 1024)
    assert 1024 * 1024 * 1024 >= MULTITHREAD_MIN_MACS
    assert 1 <= n <= min(usable_cores(), max(1, current_blas_threads()))
    with threadpool_limits(1, user_api="blas"):
        assert choose_n_threads([512, 1024, 1024, 1], 1024) == 1  # a user limit is respected


def test_blas_threads_sets_and_restores_the_count():
    before = current_blas_threads()
    with blas_threads(1):
        assert current_blas_threads() == 1
    assert current_blas_threads() == before


def test_n_threads_parameter_overrides_the_choice():
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=1, n_threads=2, random_state=0)
    X = np.random.default_rng(0).normal(size=(20, 3))
    model.fit(X, X[:, 0])
    assert model._threads() == 2
    auto = MLPRegressor(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(X, X[:, 0])
    assert auto._threads() == 1
