"""fit_scalers: one Dask pass equals the in-memory fit; subsets, errors, distributed client."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.scalers import MinMaxScaler, StandardScaler
from nnpipe.data import ParquetDataset, TrainValidationSplit, fit_scalers, iter_minibatches

from .conftest import write_parts


def test_standard_and_minmax_match_in_memory_fit(parquet_xy):
    path, X, y = parquet_xy
    ds = ParquetDataset(path, targets="y")
    xs, ys = fit_scalers(ds, "standard", "minmax")
    ref = StandardScaler(dtype="float64").fit(X)
    np.testing.assert_allclose(xs.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(xs.var_, ref.var_, rtol=1e-10)
    assert xs.n_samples_seen_ == 1000
    ref_y = MinMaxScaler(dtype="float64").fit(y.reshape(-1, 1))
    np.testing.assert_array_equal(ys.data_min_, ref_y.data_min_)
    np.testing.assert_array_equal(ys.data_max_, ref_y.data_max_)


def test_zero_variance_feature_maps_to_constant(tmp_path, xy):
    X, y = xy
    X = X.copy()
    X[:, 1] = 4.0
    ds = ParquetDataset(write_parts(tmp_path / "ds", X, y, 300), targets="y")
    xs, _ = fit_scalers(ds, "standard", None)
    assert xs.scale_[1] == 1.0
    Xb, _ = next(iter(iter_minibatches(ds, 64, x_scaler=xs)))
    assert np.all(Xb[:, 1] == 0.0) and np.isfinite(Xb).all()


def test_train_subset_statistics_exclude_validation_rows(parquet_xy):
    path, X, _ = parquet_xy
    ds = ParquetDataset(path, targets="y")
    split = TrainValidationSplit(0.3, seed=1)
    xs, _ = fit_scalers(ds, subset="train", split=split)
    train_ids = np.concatenate(
        [Xb[:, 2] for Xb, _ in iter_minibatches(ds, 128, subset="train", split=split)]
    ).astype(int)
    np.testing.assert_allclose(xs.mean_, X[train_ids].mean(axis=0), rtol=1e-10)
    assert xs.n_samples_seen_ == len(train_ids) < 1000


def test_transform_leaves_the_callers_array_alone(parquet_xy):
    path, X, _ = parquet_xy
    xs, _ = fit_scalers(ParquetDataset(path, targets="y"), "minmax", None)
    before = X.copy()
    out = xs.transform(X)
    xs.inverse_transform(out)
    np.testing.assert_array_equal(X, before)


def test_unknown_scaler_and_missing_targets_are_refused(parquet_xy):
    path, _, _ = parquet_xy
    ds = ParquetDataset(path, targets="y")
    with pytest.raises(ValueError, match=r"x_scaler='robust' is not supported; allowed: 'stand"):
        fit_scalers(ds, "robust")
    with pytest.raises(ValueError, match="has no targets"):
        fit_scalers(ParquetDataset(path), "standard", "standard")


def test_fit_on_a_distributed_client_matches_local(parquet_xy, local_client):
    ds = ParquetDataset(parquet_xy[0], targets="y")
    local, _ = fit_scalers(ds)
    remote, _ = fit_scalers(ds, client=local_client)
    np.testing.assert_array_equal(local.mean_, remote.mean_)
    np.testing.assert_array_equal(local.var_, remote.var_)


def test_nan_rows_raise_or_are_left_out_of_the_statistics(tmp_path, xy):
    from nnpipe.data import DataError

    X, y = xy
    X = X.copy()
    X[[5, 250], 0] = np.nan
    path = write_parts(tmp_path / "ds", X, y, 100)
    with pytest.raises(DataError, match=r"part-0000[02]\.parquet.*column 'x0': 1\)"):
        fit_scalers(ParquetDataset(path, targets="y"))
    ds = ParquetDataset(path, targets="y", nan_policy="drop")
    assert ds.n_dropped is None  # not known before a pass
    xs, ys = fit_scalers(ds)
    keep = np.isfinite(X).all(axis=1)
    np.testing.assert_allclose(xs.mean_, X[keep].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(ys.mean_, [y[keep].mean()], rtol=1e-12)
    assert xs.n_samples_seen_ == 998 and ds.n_dropped == 2
