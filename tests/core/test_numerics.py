"""Numerical precision of the scalers, dtype agreement with the MLP, input validation.

References are NumPy's float64 ``mean``/``var``/``min``/``max`` on the same data.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnpipe.core.mlp import MLPRegressor
from nnpipe.core.scalers import MinMaxScaler, StandardScaler
from nnpipe.core.validation import check_array

F32_HALF_ULP_AT_1 = 2.0**-24  # largest rounding error of a float32 in [0.5, 1]


def rng(seed=0):
    return np.random.default_rng(seed)


# -- 1. statistics and transforms in float64 -------------------------------------------------


def test_standard_scaler_keeps_a_small_variance_far_from_zero():
    x = 1e6 + 5 + 1e-3 * rng().normal(size=(1000, 1))  # float64
    sc = StandardScaler().fit(x)  # float32 output, float64 statistics
    np.testing.assert_allclose(sc.var_, x.var(axis=0), rtol=1e-12)
    z = sc.transform(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.std(dtype=np.float64), 1.0, rtol=1e-6)


def test_standardised_values_of_offset_data_are_right_to_float32_rounding():
    x = 1e6 + rng(1).normal(size=(1000, 1))
    exact = (x - x.mean()) / x.std()
    z = StandardScaler().fit(x).transform(x)
    # float32 rounding of values up to ~4 in size: <= 2.4e-7 (it was off by 0.053)
    assert np.abs(z - exact).max() <= 4 * F32_HALF_ULP_AT_1 * 4


def test_float32_input_is_not_shifted_by_the_rounded_mean():
    x = (1e4 + rng(2).normal(size=(1000, 2))).astype(np.float32)
    x64 = x.astype(np.float64)
    exact = (x64 - x64.mean(axis=0)) / x64.std(axis=0)
    z = StandardScaler().fit(x).transform(x)
    assert z.dtype == np.float32
    assert np.abs(z - exact).max() <= 4 * F32_HALF_ULP_AT_1 * 4  # was ~5e-4


def test_minmax_scaler_keeps_every_distinct_value_far_from_zero():
    u = 1e6 + rng(3).uniform(size=(1000, 1))
    exact = (u - u.min()) / (u.max() - u.min())
    out = MinMaxScaler().fit_transform(u)
    assert out.dtype == np.float32
    assert np.abs(out - exact).max() <= F32_HALF_ULP_AT_1  # 17 distinct values before
    out64 = MinMaxScaler(dtype="float64").fit_transform(u)
    assert len(np.unique(out64)) == 1000
    np.testing.assert_allclose(out64, exact, rtol=0, atol=1e-15)


def test_one_row_batches_far_from_zero_keep_the_variance():
    x = 1e8 + rng(4).normal(size=(1000, 1))
    sc = StandardScaler()
    for row in x:
        sc.partial_fit(row.reshape(1, -1))
    assert abs(sc.var_[0] / x.var() - 1) <= 1e-12  # Chan's update unshifted: 1.2e-9
    np.testing.assert_allclose(sc.mean_, x.mean(axis=0), rtol=1e-15)


def test_partial_fit_after_a_load_continues_the_statistics(tmp_path):
    x = 1e8 + rng(5).normal(size=(300, 2))
    first = StandardScaler().partial_fit(x[:100])
    first.save(tmp_path / "s.npz")
    loaded = StandardScaler.load(tmp_path / "s.npz")
    for chunk in np.array_split(x[100:], 20):
        loaded.partial_fit(chunk)
    np.testing.assert_allclose(loaded.var_, x.var(axis=0), rtol=1e-12)
    assert loaded.n_samples_seen_ == 300


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("input_dtype", [np.float32, np.float64, np.int64])
def test_output_dtype_is_the_scalers(cls, dtype, input_dtype):
    X = (10 * rng(6).normal(size=(50, 2))).astype(input_dtype)
    sc = cls(dtype=dtype).fit(X)
    assert sc.transform(X).dtype == dtype
    assert sc.inverse_transform(sc.transform(X)).dtype == dtype


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler])
def test_transform_can_return_another_dtype_from_the_same_float64_maths(cls):
    X = 1e4 + rng(6).normal(size=(50, 2))
    sc = cls().fit(X)  # float32 scaler
    out64 = sc.transform(X, dtype="float64")
    assert out64.dtype == np.float64
    np.testing.assert_array_equal(sc.transform(X), out64.astype(np.float32))
    back = sc.inverse_transform(out64, dtype=np.float64)
    np.testing.assert_allclose(back, X, rtol=1e-14)


# Offsets up to 1e8 standard deviations, scales over 24 decades, any batch split.
data_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n": st.integers(2, 200),
        "n_features": st.integers(1, 3),
        "offset": st.one_of(st.just(0.0), st.floats(-1e8, 1e8)),
        "log_scale": st.floats(-12, 12),
        "cuts": st.lists(st.floats(0, 1), max_size=12),
        "one_row_batches": st.booleans(),
    }
)


def make_case(case):
    sigma = 10.0 ** case["log_scale"]
    gen = rng(case["seed"])
    X = case["offset"] * sigma + sigma * gen.normal(size=(case["n"], case["n_features"]))
    if case["one_row_batches"]:
        return X, np.split(X, case["n"]), sigma
    cuts = sorted({int(c * case["n"]) for c in case["cuts"]} - {0, case["n"]})
    return X, np.split(X, cuts), sigma


@settings(max_examples=300, deadline=None)
@given(case=data_cases)
def test_standard_scaler_statistics_match_numpy_float64(case):
    X, batches, sigma = make_case(case)
    sc = StandardScaler()  # float32 output: the statistics are float64 all the same
    for batch in batches:
        sc.partial_fit(batch)
    mean, var = X.mean(axis=0), X.var(axis=0)
    assert sc.mean_.dtype == sc.var_.dtype == np.float64
    np.testing.assert_allclose(sc.var_, var, rtol=1e-12, atol=0)
    assert np.all(np.abs(sc.mean_ - mean) <= 1e-12 * (np.abs(mean) + sigma))
    np.testing.assert_allclose(sc.scale_, np.sqrt(var), rtol=1e-12)
    assert sc.n_samples_seen_ == len(X)


@settings(max_examples=150, deadline=None)
@given(case=data_cases)
def test_minmax_scaler_statistics_match_numpy_float64(case):
    X, batches, _ = make_case(case)
    sc = MinMaxScaler(feature_range=(-1, 1))
    for batch in batches:
        sc.partial_fit(batch)
    np.testing.assert_array_equal(sc.data_min_, X.min(axis=0))
    np.testing.assert_array_equal(sc.data_max_, X.max(axis=0))
    lo, hi = X.min(axis=0), X.max(axis=0)
    exact = 2 * (X - lo) / (hi - lo) - 1
    out = sc.transform(X, dtype="float64")
    np.testing.assert_allclose(out, exact, rtol=0, atol=1e-12)


# -- 2. the model's dtype governs ------------------------------------------------------------


def regression_data():
    X = rng(7).normal(size=(120, 3))
    return X, X @ np.array([1.0, -2.0, 0.5]) + 100.0


@pytest.mark.parametrize(
    "model_dtype, scaler_dtype", [("float64", "float32"), ("float32", "float64")]
)
def test_target_scaler_of_the_other_dtype_trains_and_predicts_in_float64(model_dtype, scaler_dtype):
    X, y = regression_data()
    model = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0, dtype=model_dtype)
    model.set_target_scaler(StandardScaler(dtype=scaler_dtype).fit(y.reshape(-1, 1)))
    pred = model.fit(X, y).predict(X)  # fit crashed for a float64 model and float32 scaler
    # Predictions are float64 whatever the dtypes (scikit-learn's regressors' contract),
    # not rounded to the scaler's dtype on the way.
    assert pred.dtype == np.float64
    raw = model._predict_raw(X).astype(np.float64)
    exact = raw[:, 0] * model.target_scaler_.scale_[0] + model.target_scaler_.mean_[0]
    np.testing.assert_allclose(pred, exact, rtol=1e-14)
    assert model.partial_fit(X, y).predict(X).dtype == np.float64


def test_a_float32_target_scaler_does_not_round_a_float64_models_targets():
    X, y = regression_data()
    weights = []
    for scaler_dtype in ("float32", "float64"):
        model = MLPRegressor(hidden_layer_sizes=(4,), random_state=0, dtype="float64")
        model.set_target_scaler(StandardScaler(dtype=scaler_dtype).fit(y.reshape(-1, 1)))
        model.partial_fit(X, y)  # one pass: was trained on float32-rounded targets
        weights.append(np.concatenate([c.ravel() for c in model.coefs_]))
    np.testing.assert_array_equal(weights[0], weights[1])


# -- 4. small scales are not constants -------------------------------------------------------


def test_standard_scaler_standardises_features_of_tiny_scale():
    x = 1e-16 * rng(8).normal(size=(100, 1))
    sc = StandardScaler(dtype="float64").fit(x)
    np.testing.assert_allclose(sc.scale_, x.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sc.transform(x).std(), 1.0, rtol=1e-12)


def test_minmax_scaler_maps_a_tiny_range_onto_the_feature_range():
    u = 1e-16 * rng(9).uniform(size=(100, 1))
    out = MinMaxScaler(dtype="float64").fit_transform(u)
    assert out.min() == 0.0 and abs(out.max() - 1.0) <= 1e-15


@pytest.mark.parametrize("value", [0.0, 1e-300, 3.0, -7e6, 1e12])
@pytest.mark.parametrize("batches", [1, 7])
def test_constant_features_still_map_to_a_constant(value, batches):
    X = np.c_[np.full(70, value), np.arange(70.0)]
    sc = StandardScaler(dtype="float64")
    mm = MinMaxScaler(dtype="float64")
    for chunk in np.array_split(X, batches):
        sc.partial_fit(chunk)
        mm.partial_fit(chunk)
    assert sc.scale_[0] == 1.0 and mm.scale_[0] == 1.0
    assert np.all(sc.transform(X)[:, 0] == sc.transform(X)[0, 0])
    assert np.all(mm.transform(X)[:, 0] == 0.0)


# -- 5. validation ---------------------------------------------------------------------------


def test_complex_input_is_refused_not_truncated():
    with pytest.raises(ValueError, match="Complex data not supported: X has dtype complex128"):
        StandardScaler().fit([[1 + 5j], [2 + 1j], [3 - 2j]])
    with pytest.raises(ValueError, match="Complex data not supported: y"):
        check_array(np.array([1j, 2.0]), name="y", ndim=1)


def test_values_beyond_float32_are_reported_as_overflow_with_the_fix():
    X = np.array([[1.0, 1e39], [2.0, -3e38], [3.0, 4e38]])
    msg = r"X has 2 values beyond the range of float32 \(.*column 1\); use dtype='float64'"
    with pytest.raises(ValueError, match=msg):
        check_array(X, dtype=np.float32)
    with pytest.raises(ValueError, match="dtype='float64'"):
        MLPRegressor(max_iter=1).fit(X, [1.0, 2.0, 3.0])
    assert check_array(X, dtype=np.float64).dtype == np.float64


def test_genuine_infinities_are_still_reported_as_infinite():
    X = np.array([[1.0, np.inf], [2.0, np.nan]])
    with pytest.raises(ValueError, match="1 NaN and 1 infinite values"):
        check_array(X, dtype=np.float32)
