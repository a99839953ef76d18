"""Scalers: streaming statistics equal batch ones; zero variance; no mutation; persistence."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.scalers import MinMaxScaler, StandardScaler
from nnpipe.core.serialization import ModelFileError


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(-3.0, 5.0, size=(1000, 4))


def test_standard_partial_fit_in_batches_matches_full_fit(data):
    full = StandardScaler(dtype="float64").fit(data)
    streamed = StandardScaler(dtype="float64")
    for chunk in np.array_split(data, 7):
        streamed.partial_fit(chunk)
    np.testing.assert_allclose(streamed.mean_, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(streamed.var_, data.var(axis=0), rtol=1e-10)
    np.testing.assert_allclose(streamed.scale_, full.scale_, rtol=1e-10)
    assert streamed.n_samples_seen_ == 1000


def test_standard_transform_round_trips_and_leaves_input_untouched(data):
    before = data.copy()
    sc = StandardScaler(dtype="float64").fit(data)
    z = sc.transform(data)
    assert np.array_equal(data, before)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(sc.inverse_transform(z), data, rtol=1e-12)


def test_zero_variance_feature_maps_to_zero_not_nan():
    X = np.c_[np.full(10, 7.0), np.arange(10.0)]
    sc = StandardScaler().fit(X)
    assert sc.scale_[0] == 1.0
    z = sc.transform(X)
    assert np.all(np.isfinite(z)) and np.all(z[:, 0] == 0)


def test_from_moments_equals_fit(data):
    fitted = StandardScaler(dtype="float64").fit(data)
    built = StandardScaler.from_moments(len(data), data.mean(0), data.var(0), dtype="float64")
    # Means may differ in their last bit (fit sums values shifted by a reference):
    # standardised values near 0 then differ by ~1e-16 absolute, not relative.
    np.testing.assert_allclose(
        built.transform(data), fitted.transform(data), rtol=1e-12, atol=1e-14
    )


def test_minmax_maps_to_feature_range_and_streams(data):
    sc = MinMaxScaler(feature_range=(-1, 1), dtype="float64")
    for chunk in np.array_split(data, 5):
        sc.partial_fit(chunk)
    out = sc.transform(data)
    np.testing.assert_allclose(out.min(axis=0), -1)
    np.testing.assert_allclose(out.max(axis=0), 1)
    # Exact up to rounding relative to the data's range (values near 0 included).
    np.testing.assert_allclose(sc.inverse_transform(out), data, rtol=1e-12, atol=1e-13)


def test_minmax_zero_range_is_finite():
    X = np.ones((5, 2))
    out = MinMaxScaler().fit_transform(X)
    assert np.all(np.isfinite(out))


def test_1d_input_is_treated_as_one_feature():
    y = np.array([-5.0, 0.0, 5.0])
    sc = StandardScaler().fit(y)
    assert sc.transform(y).shape == (3,)
    assert sc.n_features_in_ == 1


def test_float32_default_dtype(data):
    assert StandardScaler().fit(data).transform(data).dtype == np.float32


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([[1.0, np.nan], [2.0, 3.0]]), "1 NaN"),
        (np.empty((0, 3)), "empty"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_bad_input_gets_specific_error(bad, message):
    with pytest.raises(ValueError, match=message):
        StandardScaler().fit(bad)


def test_feature_count_mismatch_at_transform(data):
    sc = StandardScaler().fit(data)
    with pytest.raises(ValueError, match="3 features, but StandardScaler is expecting 4 features"):
        sc.transform(data[:, :3])


def test_transform_before_fit_is_an_error():
    with pytest.raises(ValueError, match="not fitted"):
        MinMaxScaler().transform(np.ones((2, 2)))


def test_invalid_feature_range():
    with pytest.raises(ValueError, match="feature_range"):
        MinMaxScaler(feature_range=(1, 0)).fit(np.ones((2, 2)))


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler])
def test_save_load_round_trip(tmp_path, data, cls):
    sc = cls(dtype="float64").fit(data)
    sc.save(tmp_path / "s.npz")
    back = cls.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.transform(data), sc.transform(data))


def test_load_wrong_kind_and_corrupt_file(tmp_path, data):
    StandardScaler().fit(data).save(tmp_path / "s.npz")
    with pytest.raises(ModelFileError, match="expected a 'MinMaxScaler'"):
        MinMaxScaler.load(tmp_path / "s.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable"):
        StandardScaler.load(tmp_path / "bad.npz")
