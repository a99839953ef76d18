"""TrainedModel: network + feature scaler + column names in one .npz, read without pickle."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp import MLPClassifier, MLPRegressor
from nnpipe.core.perceptron import Perceptron
from nnpipe.core.scalers import MinMaxScaler, StandardScaler
from nnpipe.core.serialization import ModelFileError, load_npz
from nnpipe.core.trained_model import TrainedModel

NAMES = ["temperature", "pressure", "humidity"]


@pytest.fixture(scope="module")
def regressor():
    rng = np.random.default_rng(0)
    X = rng.normal([20.0, 1000.0, 0.5], [5.0, 30.0, 0.2], size=(200, 3))  # (n, 3)
    y = -40.0 + 0.8 * (X[:, 0] - 20.0) - 0.05 * (X[:, 1] - 1000.0) + 3.0 * X[:, 2]
    scaler = StandardScaler().fit(X)
    net = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    net.fit(scaler.transform(X), y)
    return X, net, scaler


class Columns:
    """A minimal DataFrame stand-in: ``.columns`` and ``[name]``, nothing else."""

    def __init__(self, data: dict):
        self._data = data
        self.columns = list(data)

    def __getitem__(self, name):
        return self._data[name]


def test_saved_model_predicts_exactly_scaler_then_network(regressor, tmp_path):
    X, net, scaler = regressor
    TrainedModel(net, scaler, NAMES, ["y"]).save(tmp_path / "model.npz")
    loaded = TrainedModel.load(tmp_path / "model.npz")
    want = net.predict(scaler.transform(X))
    np.testing.assert_array_equal(loaded.predict(X), want)
    assert want.min() < 0  # target units, not standardised ones
    assert loaded.feature_names == NAMES and loaded.target_names == ["y"]
    assert isinstance(loaded.feature_scaler, StandardScaler)


def test_columns_are_picked_by_name_from_a_mapping_or_a_frame_like(regressor):
    X, net, scaler = regressor
    model = TrainedModel(net, scaler, NAMES)
    want = model.predict(X[:5])
    reordered = {name: X[:5, NAMES.index(name)] for name in reversed(NAMES)}
    np.testing.assert_array_equal(model.predict(reordered), want)
    np.testing.assert_array_equal(model.predict(Columns({**reordered, "extra": [0] * 5})), want)
    one_row = {name: float(X[0, i]) for i, name in enumerate(NAMES)}
    # One row goes through another BLAS kernel than five: the float32 network may
    # differ in its last bit, which the float64 target scaling no longer rounds away.
    np.testing.assert_allclose(model.predict(one_row), want[:1], rtol=1e-6)


def test_file_holds_plain_arrays_under_network_and_feature_scaler(regressor, tmp_path):
    X, net, scaler = regressor
    TrainedModel(net, scaler, NAMES).save(tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz", allow_pickle=False) as data:
        keys = set(data.files)
    assert {"network.params", "feature_scaler.mean_", "feature_scaler.scale_"} <= keys
    _, meta = load_npz(tmp_path / "model.npz", kind="TrainedModel")
    assert meta["feature_names"] == NAMES
    assert meta["network"]["kind"] == "MLPRegressor"
    assert meta["feature_scaler"]["kind"] == "StandardScaler"


def test_classifier_perceptron_and_no_scaler_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 2))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "hot", "cold")
    for net in (
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=10, random_state=0).fit(X, labels),
        Perceptron(random_state=0).fit(X, labels),
    ):
        scaler = MinMaxScaler().fit(X)
        for model in (TrainedModel(net), TrainedModel(net, scaler, ["a", "b"])):
            model.save(tmp_path / "m.npz")
            loaded = TrainedModel.load(tmp_path / "m.npz")
            np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
            assert loaded.feature_names == model.feature_names
        assert TrainedModel(net).feature_names == ["x0", "x1"]


def test_classifier_gives_its_labels_classes_and_probabilities(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(150, 2))
    labels = np.array(["cold", "mild", "hot"])[np.digitize(X[:, 0], [-0.4, 0.4])]
    net = MLPClassifier(hidden_layer_sizes=(6,), max_iter=40, random_state=0).fit(X, labels)
    scaler = MinMaxScaler().fit(X)
    TrainedModel(net, scaler, ["a", "b"], ["weather"]).save(tmp_path / "m.npz")
    model = TrainedModel.load(tmp_path / "m.npz")
    assert model.classes.tolist() == ["cold", "hot", "mild"]
    assert model.probability_columns() == ["proba_cold", "proba_hot", "proba_mild"]
    proba = model.predict_proba({"a": X[:, 0], "b": X[:, 1]})
    np.testing.assert_array_equal(proba, net.predict_proba(scaler.transform(X)))
    np.testing.assert_array_equal(model.predict(X), model.classes[proba.argmax(axis=1)])
    assert "classes=['cold', 'hot', 'mild']" in repr(model)


def test_a_regressor_has_no_classes_or_probabilities(regressor):
    X, net, scaler = regressor
    model = TrainedModel(net, scaler, NAMES)
    assert model.classes is None
    with pytest.raises(ValueError, match="MLPRegressor: it gives no class probabilities"):
        model.predict_proba(X)
    with pytest.raises(ValueError, match="MLPRegressor: it has no classes"):
        model.probability_columns()


def test_missing_and_non_numeric_columns_are_named(regressor):
    X, net, scaler = regressor
    model = TrainedModel(net, scaler, NAMES)
    with pytest.raises(ValueError, match=r"missing feature columns \['humidity'\]"):
        model.predict({"temperature": X[:2, 0], "pressure": X[:2, 1]})
    bad = {"temperature": ["20.5", "warm"], "pressure": X[:2, 1], "humidity": X[:2, 2]}
    with pytest.raises(ValueError, match="feature column 'temperature' is not numeric.*warm"):
        model.predict(bad)
    with pytest.raises(ValueError, match=r"shape \(2, 2\); expected \(n_samples, 3\)"):
        model.predict(X[:2, :2])
    uneven = {"temperature": X[:2, 0], "pressure": X[:3, 1], "humidity": X[:2, 2]}
    with pytest.raises(ValueError, match="different lengths"):
        model.predict(uneven)


def test_parts_that_do_not_fit_together_are_refused(regressor):
    _, net, scaler = regressor
    with pytest.raises(ValueError, match="2 feature_names given but the network takes 3"):
        TrainedModel(net, scaler, ["a", "b"])
    with pytest.raises(ValueError, match="duplicates"):
        TrainedModel(net, scaler, ["a", "a", "b"])
    with pytest.raises(ValueError, match="scaler has 5 features but the network takes 3"):
        TrainedModel(net, StandardScaler().fit(np.ones((4, 5))), NAMES)
    with pytest.raises(ValueError, match="not fitted"):
        TrainedModel(MLPRegressor())


def test_bare_network_file_is_refused_with_a_conversion_that_works(regressor, tmp_path):
    X, net, scaler = regressor
    net.save(tmp_path / "network.npz")
    scaler.save(tmp_path / "x_scaler.npz")
    with pytest.raises(ModelFileError, match="bare MLPRegressor network.*TrainedModel.from_files"):
        TrainedModel.load(tmp_path / "network.npz")
    converted = TrainedModel.from_files(
        tmp_path / "network.npz", scaler_path=tmp_path / "x_scaler.npz", feature_names=NAMES
    )
    converted.save(tmp_path / "trained.npz")
    np.testing.assert_array_equal(
        TrainedModel.load(tmp_path / "trained.npz").predict(X), net.predict(scaler.transform(X))
    )


def test_tampered_or_foreign_files_are_refused(regressor, tmp_path):
    _, net, scaler = regressor
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, weights=np.array([object()], dtype=object))
    with pytest.raises(ModelFileError, match="pickled.npz"):
        TrainedModel.load(pickled)
    scaler.save(tmp_path / "scaler.npz")
    with pytest.raises(ModelFileError, match="holds a 'StandardScaler', expected a 'TrainedModel'"):
        TrainedModel.load(tmp_path / "scaler.npz")
    arrays, meta = TrainedModel(net, scaler, NAMES).to_arrays()
    del arrays["network.params"]
    with pytest.raises(ModelFileError, match="missing array 'params'"):
        TrainedModel.from_arrays(arrays, meta, "cut.npz")
