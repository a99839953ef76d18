"""save -> load keeps every estimator's parameters, given as Python or NumPy scalars.

Parameter grids built with ``np.arange`` hand out ``np.int64``/``np.float32``;
hidden_layer_sizes may be an int, a tuple, a list or an array. Each is saved
through the one serializer (``params_to_json``) and comes back equal after
normalisation (NumPy scalars to Python ones, dtypes to names, sequences to tuples).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnpipe.core.hopfield import HopfieldNetwork, ModernHopfield
from nnpipe.core.mlp import MLPClassifier, MLPRegressor, load_model
from nnpipe.core.perceptron import Perceptron
from nnpipe.core.scalers import MinMaxScaler, StandardScaler, load_scaler
from nnpipe.core.serialization import load_npz, params_from_json, params_to_json
from nnpipe.core.trained_model import TrainedModel

SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def ints(lo: int, hi: int):
    """An int in [lo, hi] as a Python int, np.int64 or np.int32."""
    return st.integers(lo, hi).flatmap(lambda v: st.sampled_from([v, np.int64(v), np.int32(v)]))


def floats(*values: float):
    """One of ``values`` as a Python float, np.float64 or np.float32."""
    return st.sampled_from(values).flatmap(
        lambda v: st.sampled_from([v, np.float64(v), np.float32(v)])
    )


bools = st.booleans().flatmap(lambda b: st.sampled_from([b, np.bool_(b)]))
dtypes = st.sampled_from(
    ["float32", "float64", np.float32, np.float64, np.dtype("float32"), np.dtype("float64")]
)
seeds = st.one_of(st.none(), ints(0, 2**31 - 1))
sizes = st.lists(st.integers(1, 4), min_size=1, max_size=2)
hidden_layer_sizes = st.one_of(
    ints(1, 4),
    st.lists(ints(1, 4), min_size=1, max_size=2).map(tuple),
    sizes,
    sizes.map(np.array),
    sizes.map(lambda s: np.array(s, dtype=np.int32)),
)
n_threads = st.one_of(st.none(), ints(1, 2))


def normalise(value):
    """Compare parameters by meaning: NumPy scalars, dtypes and sequences made plain."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype) or isinstance(value, type):
        return np.dtype(value).name
    if isinstance(value, tuple | list | np.ndarray):
        return tuple(normalise(v) for v in value)
    return value


def is_plain(value) -> bool:
    """Plain Python values only (what JSON gives back), so the model saves again."""
    if isinstance(value, tuple):
        return all(is_plain(v) for v in value)
    return value is None or type(value) in (bool, int, float, str)


def fit_quietly(model, *args):
    with warnings.catch_warnings():  # convergence/capacity warnings are not the point here
        warnings.simplefilter("ignore")
        return model.fit(*args)


def check_round_trip(model, path, load):
    model.save(path)
    loaded = load(path)
    assert type(loaded) is type(model)
    original = {k: normalise(v) for k, v in model.get_params().items()}
    again = loaded.get_params()
    assert {k: normalise(v) for k, v in again.items()} == original
    assert all(is_plain(v) for v in again.values()), again
    loaded.save(path)  # and the reloaded parameters save again, unchanged
    assert load(path).get_params() == again
    return loaded


XR = np.random.default_rng(0).normal(size=(24, 3))
YR = XR @ np.array([1.0, -1.0, 0.5])
YC = (XR[:, 0] > 0).astype(int)
PATTERNS = np.where(np.random.default_rng(1).random((2, 12)) > 0.5, 1, -1)


def mlp_params(**extra):
    return st.fixed_dictionaries(
        {
            "hidden_layer_sizes": hidden_layer_sizes,
            "activation": st.sampled_from(["relu", "tanh", "logistic", "identity"]),
            "solver": st.sampled_from(["adam", "sgd"]),
            "alpha": floats(0.0, 1e-4, 0.1),
            "batch_size": st.one_of(st.just("auto"), ints(1, 30)),
            "learning_rate_init": floats(1e-3, 0.01),
            "max_iter": ints(1, 3),
            "shuffle": bools,
            "random_state": seeds,
            "tol": floats(1e-4, 0.0),
            "momentum": floats(0.9, 0.5),
            "nesterovs_momentum": bools,
            "early_stopping": bools,
            "validation_fraction": floats(0.25),
            "n_iter_no_change": ints(1, 10),
            "l1": floats(0.0, 1e-3),
            "dtype": dtypes,
            "n_threads": n_threads,
            **extra,
        }
    )


@SETTINGS
@given(
    params=mlp_params(
        loss=st.sampled_from(["squared_error", "huber", "absolute_error"]),
        target_scaling=st.sampled_from(["standard", "minmax", None]),
    )
)
def test_mlp_regressor_parameters_survive_save_and_load(tmp_path, params):
    model = fit_quietly(MLPRegressor(**params), XR, YR)
    loaded = check_round_trip(model, tmp_path / "m.npz", load_model)
    np.testing.assert_array_equal(loaded.predict(XR), model.predict(XR))


@SETTINGS
@given(params=mlp_params())
def test_mlp_classifier_parameters_survive_save_and_load(tmp_path, params):
    model = fit_quietly(MLPClassifier(**params), XR, YC)
    loaded = check_round_trip(model, tmp_path / "m.npz", MLPClassifier.load)
    np.testing.assert_array_equal(loaded.predict_proba(XR), model.predict_proba(XR))


@SETTINGS
@given(
    params=st.fixed_dictionaries(
        {
            "eta0": floats(1.0, 0.5, 0.1),
            "max_iter": ints(1, 5),
            "fit_intercept": bools,
            "shuffle": bools,
            "random_state": seeds,
            "dtype": dtypes,
            "verbose": st.just(np.bool_(False)),
        }
    )
)
def test_perceptron_parameters_survive_save_and_load(tmp_path, params):
    model = fit_quietly(Perceptron(**params), XR, YC)
    loaded = check_round_trip(model, tmp_path / "p.npz", load_model)
    np.testing.assert_array_equal(loaded.predict(XR), model.predict(XR))


@SETTINGS
@given(
    params=st.fixed_dictionaries(
        {
            "rule": st.sampled_from(["hebbian", "storkey", "pseudoinverse"]),
            "update": st.sampled_from(["async", "sync"]),
            "max_iter": ints(1, 20),
            "random_state": seeds,
            "n_threads": n_threads,
        }
    )
)
def test_hopfield_parameters_survive_save_and_load(tmp_path, params):
    model = fit_quietly(HopfieldNetwork(**params), PATTERNS)
    loaded = check_round_trip(model, tmp_path / "h.npz", HopfieldNetwork.load)
    assert loaded.order_seed_ == model.order_seed_


@SETTINGS
@given(
    params=st.fixed_dictionaries(
        {"beta": floats(1.0, 2.0, 0.5), "max_iter": ints(1, 10), "tol": floats(1e-6, 0.0)}
    ),
    dtype=dtypes,
)
def test_modern_hopfield_parameters_survive_save_and_load(tmp_path, params, dtype):
    model = fit_quietly(ModernHopfield(dtype=dtype, **params), XR)
    check_round_trip(model, tmp_path / "mh.npz", ModernHopfield.load)


feature_ranges = st.tuples(floats(0.0, -1.0), floats(1.0, 2.0)).flatmap(
    lambda r: st.sampled_from([r, list(r), np.array(r), (int(r[0]), r[1])])
)


@SETTINGS
@given(with_mean=bools, with_std=bools, dtype=dtypes)
def test_standard_scaler_parameters_survive_save_and_load(tmp_path, with_mean, with_std, dtype):
    scaler = StandardScaler(with_mean=with_mean, with_std=with_std, dtype=dtype).fit(XR)
    check_round_trip(scaler, tmp_path / "s.npz", load_scaler)


@SETTINGS
@given(feature_range=feature_ranges, dtype=dtypes)
def test_minmax_scaler_parameters_survive_save_and_load(tmp_path, feature_range, dtype):
    scaler = MinMaxScaler(feature_range=feature_range, dtype=dtype).fit(XR)
    loaded = check_round_trip(scaler, tmp_path / "s.npz", MinMaxScaler.load)
    np.testing.assert_array_equal(loaded.transform(XR), scaler.transform(XR))


def test_trained_model_keeps_numpy_parameters_of_network_and_scaler(tmp_path):
    network = MLPRegressor(hidden_layer_sizes=np.int64(3), max_iter=np.int64(2), random_state=0)
    scaler = MinMaxScaler(feature_range=(np.float32(0), 2)).fit(XR)
    fit_quietly(network, scaler.transform(XR), YR)
    TrainedModel(network, scaler).save(tmp_path / "t.npz")
    loaded = TrainedModel.load(tmp_path / "t.npz")
    assert loaded.network.get_params()["hidden_layer_sizes"] == 3
    assert loaded.feature_scaler.feature_range == (0.0, 2)
    np.testing.assert_array_equal(loaded.predict(XR), TrainedModel(network, scaler).predict(XR))


# -- the cases of the issue, one by one ------------------------------------------------------


@pytest.mark.parametrize("hidden", [4, np.int64(4), np.array([3, 2]), [3, 2]])
def test_hidden_layer_sizes_int_or_array_saves_and_loads(tmp_path, hidden):
    model = fit_quietly(MLPRegressor(hidden_layer_sizes=hidden, max_iter=2), XR, YR)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_params()["hidden_layer_sizes"] == normalise(hidden)
    assert [c.shape for c in loaded.coefs_] == [c.shape for c in model.coefs_]


@pytest.mark.parametrize(
    "make",
    [
        lambda: fit_quietly(Perceptron(max_iter=np.int64(5)), XR, YC),
        lambda: fit_quietly(Perceptron(dtype=np.float32), XR, YC),
        lambda: fit_quietly(HopfieldNetwork(max_iter=np.int64(5)), PATTERNS),
        lambda: fit_quietly(ModernHopfield(beta=np.float32(2)), XR),
        lambda: MinMaxScaler(feature_range=(np.float32(0), 2)).fit(XR),
    ],
    ids=["perceptron-max_iter", "perceptron-dtype", "hopfield", "modern", "minmax"],
)
def test_numpy_scalar_parameters_save(tmp_path, make):
    model = make()
    model.save(tmp_path / "m.npz")
    loaded = type(model).load(tmp_path / "m.npz")
    assert {k: normalise(v) for k, v in loaded.get_params().items()} == {
        k: normalise(v) for k, v in model.get_params().items()
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda: fit_quietly(Perceptron(random_state=np.int64(3)), XR, YC),
        lambda: fit_quietly(HopfieldNetwork(random_state=np.int64(3)), PATTERNS),
    ],
    ids=["perceptron", "hopfield"],
)
def test_numpy_int_random_state_is_saved_not_dropped(tmp_path, make):
    model = make()
    model.save(tmp_path / "m.npz")
    _, meta = load_npz(tmp_path / "m.npz")
    assert meta["params"]["random_state"] == 3
    assert type(model).load(tmp_path / "m.npz").random_state == 3


def test_params_to_json_gives_json_values_and_names_what_it_cannot_save():
    params = {
        "a": np.int64(2),
        "b": np.float32(0.5),
        "c": np.bool_(True),
        "d": np.array([1, 2]),
        "e": (np.int32(1), 2.0),
        "f": np.float64,
        "g": np.dtype("float32"),
        "h": np.random.default_rng(0),
        "i": None,
        "j": "relu",
    }
    out = params_to_json(params, "Model")
    assert json.loads(json.dumps(out)) == out
    assert out == {
        "a": 2,
        "b": 0.5,
        "c": True,
        "d": [1, 2],
        "e": [1, 2.0],
        "f": "float64",
        "g": "float32",
        "h": None,
        "i": None,
        "j": "relu",
    }
    assert params_from_json(out)["d"] == (1, 2)
    with pytest.raises(TypeError, match="Model parameter k=.*cannot be saved"):
        params_to_json({"k": object()}, "Model")
