"""The pyfunc model: a real nnpipe network + scaler logged, loaded and registered.

Also: a TrainedModel file logged as it is, and a model logged by earlier versions
(network and scaler as separate artifacts, their own pyfunc code) still loading.

Serving it with ``mlflow models serve`` is tested in test_services.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.models import Model

from nnpipe.core.mlp import MLPClassifier, MLPRegressor
from nnpipe.core.scalers import StandardScaler
from nnpipe.core.serialization import ModelFileError, save_npz
from nnpipe.core.trained_model import TrainedModel
from nnpipe.tracking import MlflowTracker

from .conftest import FEATURES


def test_pyfunc_predicts_exactly_what_nnpipe_predicts_in_target_units(
    logged_regressor, regressor_files
):
    _, _, X, net, scaler = regressor_files
    _, _, logged = logged_regressor
    frame = pd.DataFrame(X[:50], columns=FEATURES)
    got = mlflow.pyfunc.load_model(logged.model_uri).predict(frame)
    want = net.predict(scaler.transform(X[:50]))
    np.testing.assert_array_equal(np.asarray(got), want)
    assert want.min() < 0  # original (negative) target units, not standardised ones
    # Columns may come in any order; they are picked by name.
    shuffled = frame[FEATURES[::-1]]
    np.testing.assert_array_equal(
        np.asarray(mlflow.pyfunc.load_model(logged.model_uri).predict(shuffled)), want
    )


def test_logged_model_lives_in_the_run_experiment_artifacts(logged_regressor, model_store):
    tracker, run_id, logged = logged_regressor
    root, _ = model_store
    model = tracker.client.get_logged_model(logged.model_uri.removeprefix("models:/"))
    assert model.experiment_id == tracker.experiment_id
    assert model.source_run_id == run_id
    assert model.status == LoggedModelStatus.READY
    assert model.artifact_location.startswith((root / "mlartifacts" / "nnpipe-train").as_uri())
    assert not (root / "mlruns").exists()  # nothing in MLflow's Default experiment folder


def test_logged_model_has_signature_input_example_and_code_not_pickle(logged_regressor):
    _, _, logged = logged_regressor
    local = Path(mlflow.artifacts.download_artifacts(logged.model_uri))
    meta = Model.load(local / "MLmodel")
    assert [c.name for c in meta.signature.inputs] == FEATURES
    assert {c.type.to_numpy() for c in meta.signature.inputs} == {np.dtype("float64")}
    assert meta.saved_input_example_info is not None
    example = json.loads((local / meta.saved_input_example_info["artifact_path"]).read_text())
    assert example["columns"] == FEATURES and len(example["data"]) == 3
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    # The network and the feature scaler travel in one .npz, with the column names.
    (npz,) = [f for f in files if f.endswith(".npz")]
    trained = TrainedModel.load(local / npz)
    assert isinstance(trained.network, MLPRegressor)
    assert isinstance(trained.feature_scaler, StandardScaler)
    assert trained.feature_names == FEATURES
    assert not any(f.endswith((".pkl", ".pickle", ".cloudpickle")) for f in files)
    assert meta.flavors["python_function"]["model_code_path"].endswith("pyfunc_model.py")
    # nnpipe's sources travel with the model (code_paths), without bytecode caches.
    assert meta.flavors["python_function"]["code"] == "code"
    assert "code/nnpipe/core/trained_model.py" in files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    requirements = (local / "requirements.txt").read_text().split()
    assert [r.split("==")[0] for r in requirements] == [
        "mlflow-skinny",
        "numpy",
        "pandas",
        "threadpoolctl",
    ]


def test_successful_run_registers_a_model_version(logged_regressor, model_store):
    tracker, run_id, _ = logged_regressor
    _, uri = model_store
    (registered,) = tracker.registered_models
    assert registered.registered_name == "nnpipe-regressor" and registered.version == "1"
    version = MlflowClient(tracking_uri=uri).get_model_version("nnpipe-regressor", "1")
    assert version.run_id == run_id
    model = mlflow.pyfunc.load_model(registered.registry_uri)
    assert [c.name for c in model.metadata.get_input_schema().inputs] == FEATURES


def test_failed_run_registers_nothing(model_store, regressor_files):
    network_path, scaler_path, X, _, _ = regressor_files
    tracker = MlflowTracker("nnpipe-train-failing")
    with pytest.raises(RuntimeError, match="evaluation failed"):
        with tracker.run("fails after logging") as run_id:
            tracker.log_model(
                network_path,
                scaler_path=scaler_path,
                input_example=X[:2],
                feature_names=FEATURES,
                registered_model_name="never-registered",
            )
            raise RuntimeError("evaluation failed")
    assert tracker.client.get_run(run_id).info.status == "FAILED"
    assert tracker.client.search_model_versions("name='never-registered'") == []
    assert tracker.registered_models == []


def test_classifier_pyfunc_returns_nnpipe_labels(model_store, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 2))
    y = np.where(X[:, 0] + X[:, 1] > 0, 3, 7)
    net = MLPClassifier(hidden_layer_sizes=(6,), max_iter=30, random_state=0).fit(X, y)
    net.save(tmp_path / "clf.npz")
    tracker = MlflowTracker("nnpipe-classify")
    with tracker.run():
        logged = tracker.log_model(tmp_path / "clf.npz", input_example=X[:2])
    got = mlflow.pyfunc.load_model(logged.model_uri).predict(pd.DataFrame(X, columns=["x0", "x1"]))
    np.testing.assert_array_equal(np.asarray(got), net.predict(X))
    assert set(np.unique(got)) <= {3, 7}


def test_classifier_pyfunc_gives_labels_or_probabilities_when_asked(model_store, tmp_path):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 2))
    labels = np.array(["cat", "dog", "emu"])[np.digitize(X[:, 0] - X[:, 1], [-0.5, 0.5])]
    net = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X, labels)
    scaler = StandardScaler().fit(X)
    path = tmp_path / "model.npz"
    TrainedModel(net, scaler, ["u", "v"], ["animal"]).save(path)
    tracker = MlflowTracker("nnpipe-classify-proba")
    with tracker.run():
        logged = tracker.log_model(path, input_example=X[:3])
    model = mlflow.pyfunc.load_model(logged.model_uri)
    frame = pd.DataFrame(X[:40], columns=["u", "v"])
    want = net.predict_proba(scaler.transform(X[:40]))
    assert np.asarray(model.predict(frame)).tolist() == net.classes_[want.argmax(axis=1)].tolist()
    proba = model.predict(frame, params={"predict_proba": True})
    assert list(proba.columns) == ["proba_cat", "proba_dog", "proba_emu"]
    np.testing.assert_array_equal(proba.to_numpy(), want)
    # The param is declared in the signature (so the REST API takes it too), default False.
    (param,) = model.metadata.get_params_schema().params
    assert (param.name, param.default) == ("predict_proba", False)
    assert np.asarray(model.predict(frame, params={"predict_proba": False})).shape == (40,)


def test_regressor_declares_no_probability_param(logged_regressor):
    _, _, logged = logged_regressor
    assert mlflow.pyfunc.load_model(logged.model_uri).metadata.get_params_schema() is None


def test_tampered_or_mismatched_files_are_refused_before_logging(
    model_store, regressor_files, tmp_path
):
    network_path, _, X, _, _ = regressor_files
    tracker = MlflowTracker("nnpipe-bad-files")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x80\x04not a zip, maybe a pickle")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, weights=np.array([object()], dtype=object))
    wrong_width = tmp_path / "scaler5.npz"
    StandardScaler().fit(np.ones((4, 5))).save(wrong_width)
    not_a_scaler = tmp_path / "not_scaler.npz"
    save_npz(not_a_scaler, {"a": np.zeros(3)}, {"kind": "Something"})
    with tracker.run() as run_id:
        with pytest.raises(ModelFileError, match="garbage.npz"):
            tracker.log_model(garbage, input_example=X[:2])
        with pytest.raises(ModelFileError, match="pickled.npz"):
            tracker.log_model(pickled, input_example=X[:2])
        with pytest.raises(ValueError, match="scaler has 5 features but the network takes 3"):
            tracker.log_model(network_path, scaler_path=wrong_width, input_example=X[:2])
        with pytest.raises(ModelFileError, match="'Something'"):
            tracker.log_model(network_path, scaler_path=not_a_scaler, input_example=X[:2])
        with pytest.raises(ValueError, match="2 feature_names given"):
            tracker.log_model(network_path, input_example=X[:2], feature_names=["a", "b"])
    assert tracker.client.get_run(run_id).outputs.model_outputs == []


def test_missing_feature_column_is_named(logged_regressor, regressor_files):
    _, _, X, _, _ = regressor_files
    _, _, logged = logged_regressor
    model = mlflow.pyfunc.load_model(logged.model_uri)
    with pytest.raises(Exception, match="humidity"):
        model.predict(pd.DataFrame(X[:2, :2], columns=FEATURES[:2]))


def test_trained_model_file_is_logged_as_it_is(model_store, regressor_files, tmp_path):
    network_path, scaler_path, X, net, scaler = regressor_files
    path = tmp_path / "model.npz"
    TrainedModel.from_files(network_path, scaler_path, FEATURES).save(path)
    tracker = MlflowTracker("nnpipe-trained-file")
    with tracker.run():
        with pytest.raises(ValueError, match="holds its own feature scaler"):
            tracker.log_model(path, scaler_path=scaler_path)
        with pytest.raises(ValueError, match=r"feature_names \['a', 'b', 'c'\] differ"):
            tracker.log_model(path, feature_names=["a", "b", "c"])
        logged = tracker.log_model(path)  # example: the scaler's means, named columns
    model = mlflow.pyfunc.load_model(logged.model_uri)
    assert [c.name for c in model.metadata.get_input_schema().inputs] == FEATURES
    got = model.predict(pd.DataFrame(X[:20], columns=FEATURES))
    np.testing.assert_array_equal(np.asarray(got), net.predict(scaler.transform(X[:20])))


def test_model_logged_by_earlier_versions_still_loads(model_store, regressor_files):
    network_path, scaler_path, X, net, scaler = regressor_files
    client = MlflowClient()
    experiment_id = client.create_experiment("nnpipe-earlier-layout")
    run = client.create_run(experiment_id)
    # In the run's experiment, as log_model does (else: Default experiment, ./mlruns).
    logged = client.create_logged_model(experiment_id, name="model", source_run_id=run.info.run_id)
    frame = pd.DataFrame(X[:20], columns=FEATURES)
    info = Model.log(
        artifact_path=None,
        name="model",
        flavor=mlflow.pyfunc,
        run_id=run.info.run_id,
        python_model=str(Path(__file__).with_name("pyfunc_model_v1.py")),
        artifacts={"network": str(network_path), "feature_scaler": str(scaler_path)},
        model_config={"feature_names": FEATURES},
        model_id=logged.model_id,
    )
    client.set_terminated(run.info.run_id)
    got = mlflow.pyfunc.load_model(info.model_uri).predict(frame)
    np.testing.assert_array_equal(np.asarray(got), net.predict(scaler.transform(X[:20])))
