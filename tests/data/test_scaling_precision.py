"""Out-of-core scaler fitting and scaling keep float64 precision on data far from zero."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.data import ParquetDataset, fit_scalers, iter_minibatches

from .conftest import write_parts


@pytest.mark.parametrize(
    "offset, sigma, rows_per_partition",
    [(1e8, 1.0, 7), (1e8, 1e-3, 50), (-3e7, 20.0, 1), (0.0, 2.0, 33)],
)
def test_fit_scalers_matches_numpy_on_offset_data(tmp_path, offset, sigma, rows_per_partition):
    rng = np.random.default_rng(11)
    X = offset * sigma + sigma * rng.normal(size=(400, 2))
    y = X[:, 0] * 2.0
    ds = ParquetDataset(write_parts(tmp_path / "ds", X, y, rows_per_partition), targets="y")
    xs, ys = fit_scalers(ds, "standard", "minmax")
    # merging partition moments unshifted: relative variance error ~1e-9 at offset 1e8
    np.testing.assert_allclose(xs.var_, X.var(axis=0), rtol=1e-12)
    mean = X.mean(axis=0)
    assert np.all(np.abs(xs.mean_ - mean) <= 1e-12 * (np.abs(mean) + sigma))
    assert xs.n_samples_seen_ == 400
    assert ys.data_min_[0] == y.min() and ys.data_max_[0] == y.max()


def test_streamed_batches_of_offset_data_are_scaled_from_float64_values(tmp_path):
    rng = np.random.default_rng(12)
    X = 1e6 + rng.normal(size=(300, 2))
    y = 1e6 + rng.uniform(size=300)
    ds = ParquetDataset(write_parts(tmp_path / "ds", X, y, 100), targets="y")
    xs, ys = fit_scalers(ds, "standard", "minmax")
    Xb, yb = next(iter(iter_minibatches(ds, 300, shuffle=False, x_scaler=xs, y_scaler=ys)))
    assert Xb.dtype == yb.dtype == np.float32
    exact_x = (X - X.mean(axis=0)) / X.std(axis=0)
    exact_y = (y - y.min()) / (y.max() - y.min())
    # float32 rounding only (reading float32 first rounded the data by up to 0.03)
    assert np.abs(Xb - exact_x).max() <= 4 * 2.0**-22
    assert np.abs(yb - exact_y).max() <= 2.0**-24
