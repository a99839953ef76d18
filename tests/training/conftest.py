"""The data tests' Parquet fixtures, reused, and the small model both Trainer tests train."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp import MLPRegressor
from nnpipe.data import ParquetDataset, TrainValidationSplit, fit_scalers
from tests.data.conftest import local_client, parquet_xy, write_parts, xy

__all__ = [
    "assert_same_weights",
    "local_client",
    "parquet_xy",
    "two_workers",
    "small_model",
    "weights",
    "write_parts",
    "xy",
]


def small_model(**kw):
    params = dict(hidden_layer_sizes=(8,), batch_size=50, random_state=0, n_iter_no_change=50)
    params.update(kw)
    return MLPRegressor(**params)


def weights(model):
    return [w.copy() for w in model.coefs_ + model.intercepts_]


def assert_same_weights(a, b):
    for wa, wb in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(wa, wb)


@pytest.fixture
def setup(parquet_xy):
    """(dataset, X, y, split, x_scaler, y_scaler) of the small Parquet dataset."""
    path, X, y = parquet_xy
    ds = ParquetDataset(path, targets="y")
    split = TrainValidationSplit(0.2)
    xs, ys = fit_scalers(ds, subset="train", split=split)
    return ds, X, y, split, xs, ys


@pytest.fixture(scope="package")
def two_workers():
    """An in-process cluster of two single-threaded workers."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
