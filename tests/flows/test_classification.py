"""Classification through the flows: string labels from Parquet to MLflow, pyfunc and predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.config import ConfigError, PipelineConfig, load_config
from flows.pipeline import pipeline, stage_configs
from flows.predict import predict_file
from flows.train_bp import train_bp
from nnpipe.core.mlp import MLPClassifier
from nnpipe.core.trained_model import TrainedModel
from nnpipe.data import DataError, TrainValidationSplit

pytestmark = pytest.mark.usefixtures("prefect_harness")

SPECIES = np.array(["setosa", "versicolor", "virginica"])
FEATURES = ["x0", "x1", "x2"]


def write_species(root, n=1200, n_files=4, seed=0, labels=None):
    """Three Gaussian blobs labelled by species name, ``n`` rows in ``n_files`` files."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, n)
    X = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 1.0], [0.0, 3.0, -1.0]])[codes]
    X = X + rng.normal(size=(n, 3))
    labels = SPECIES[codes] if labels is None else labels
    for i, rows in enumerate(np.array_split(np.arange(n), n_files)):
        table = {name: X[rows, j] for j, name in enumerate(FEATURES)}
        table["species"] = pa.array(labels[rows].tolist())
        pq.write_table(pa.table(table), root / f"part-{i:05d}.parquet")
    return root, X, labels


def small_pipeline(workdir, dataset, **train) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "workdir": str(workdir),
            "data": {
                "regression": {"n_rows": 800, "n_features": 3, "rows_per_partition": 400},
                "hopfield": {
                    "n_neurons": 20,
                    "n_patterns": 2,
                    "n_probes": 100,
                    "rows_per_partition": 100,
                },
            },
            "train": {
                "task": "classification",
                "dataset": str(dataset),
                "target": "species",
                "hidden_layer_sizes": [16],
                "max_epochs": 4,
                "batch_size": 64,
                "learning_rate_init": 0.01,
                **train,
            },
            "recall": {"max_iter": 10},
        }
    )


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The pipeline with ``train.task: classification`` on a species dataset, run once."""
    root = tmp_path_factory.mktemp("classify")
    dataset, X, labels = write_species(root / "species")
    config = small_pipeline(root / "work", dataset)
    return config, pipeline(config=config), X, labels


@pytest.fixture(scope="module")
def client():
    from mlflow import MlflowClient

    return MlflowClient()


def test_classifier_summary_reports_accuracy_log_loss_and_macro_f1(ran):
    _, result, _, _ = ran
    s = result["summary"]["train_bp"]
    assert s["task"] == "classification"
    assert s["classes"] == ["setosa", "versicolor", "virginica"]
    assert s["accuracy"] > 0.85 and s["f1_macro"] > 0.85
    assert s["accuracy"] > s["baseline_accuracy"] + 0.4
    assert 0 < s["log_loss"] < 0.5
    assert s["registered_model"].startswith("models:/nnpipe-classifier/")


def test_mlflow_run_holds_classes_epoch_accuracy_and_confusion_matrix(ran, client):
    _, result, _, _ = ran
    run_id = result["run_ids"]["train_bp"]
    run = client.get_run(run_id)
    assert run.data.params["config.task"] == "classification"
    assert json.loads(run.data.params["data.classes"]) == ["setosa", "versicolor", "virginica"]
    assert run.data.params["model.loss"] == "log_loss"
    for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        history = client.get_metric_history(run_id, name)
        assert [m.step for m in history] == [1, 2, 3, 4], name
    final = run.data.metrics
    assert final["accuracy"] == pytest.approx(result["summary"]["train_bp"]["accuracy"])
    assert {"log_loss", "f1_macro", "n_classes"} <= set(final)
    local = client.download_artifacts(run_id, "plots/confusion_matrix.png")
    with open(local, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(client.download_artifacts(run_id, "classes.json")) as fh:
        assert json.load(fh) == {"target": "species", "classes": list(SPECIES)}


def test_logged_accuracy_is_what_the_saved_model_predicts_on_the_validation_rows(ran):
    from flows.train_bp import evaluate_classifier, make_split
    from nnpipe.data.dataset import ParquetDataset

    config, result, _, _ = ran
    s = result["summary"]["train_bp"]
    trained = TrainedModel.load(s["model_path"])
    _, train, _ = stage_configs(config)
    dataset = ParquetDataset(
        train.dataset_path, targets=train.target, labels=True, classes=trained.classes
    )
    split = make_split(train)
    metrics, _, (y_true, y_pred) = evaluate_classifier.fn(trained, dataset, split)
    right, rows = 0, 0
    for i in range(dataset.n_partitions):
        X, y = dataset.read_partition(i, "validation", split)
        right += int(np.count_nonzero(trained.predict(X) == trained.classes[y[:, 0].astype(int)]))
        rows += len(X)
    assert rows == len(y_true) > 0
    assert metrics["accuracy"] == pytest.approx(right / rows) == pytest.approx(s["accuracy"])


def test_saved_model_and_registered_pyfunc_answer_with_species_names(ran):
    import mlflow

    config, result, X, labels = ran
    s = result["summary"]["train_bp"]
    trained = TrainedModel.load(s["model_path"])
    assert isinstance(trained.network, MLPClassifier)
    assert trained.classes.tolist() == list(SPECIES)
    frame = pd.DataFrame(X[:200], columns=FEATURES)
    local = trained.predict(frame)
    assert np.mean(local == labels[:200]) > 0.85
    model = mlflow.pyfunc.load_model(s["registered_model"])
    np.testing.assert_array_equal(np.asarray(model.predict(frame)), local)
    proba = model.predict(frame, params={"predict_proba": True})
    assert list(proba.columns) == ["proba_setosa", "proba_versicolor", "proba_virginica"]
    np.testing.assert_allclose(proba.to_numpy().sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.to_numpy(), trained.predict_proba(frame))


@pytest.mark.parametrize("source", ["local", "registry"])
def test_predict_writes_the_label_and_one_probability_column_per_class(ran, tmp_path, source):
    _, result, X, labels = ran
    s = result["summary"]["train_bp"]
    model = s["model_path"] if source == "local" else s["registered_model"]
    pd.DataFrame(X[:50], columns=FEATURES).to_csv(tmp_path / "in.csv", index=False)
    info = predict_file(model, tmp_path / "in.csv", tmp_path / "out.parquet", column="species")
    out = pd.read_parquet(tmp_path / "out.parquet")
    proba_columns = ["proba_setosa", "proba_versicolor", "proba_virginica"]
    assert list(out.columns) == [*FEATURES, "species", *proba_columns]
    assert info["probability_columns"] == proba_columns and sum(info["counts"].values()) == 50
    picked = np.array(proba_columns)[out[proba_columns].to_numpy().argmax(axis=1)]
    assert out["species"].tolist() == [p.removeprefix("proba_") for p in picked]


def test_validation_labels_training_never_saw_fail_the_run_before_training(tmp_path, client):
    split = TrainValidationSplit(0.2, seed=0)
    mask = split.validation_mask("part-00002.parquet", 300)
    labels = SPECIES[np.arange(1200) % 3].astype(object)
    labels[600 + int(np.flatnonzero(mask)[0])] = "unknown-lily"
    dataset, _, _ = write_species(tmp_path / "ds", labels=labels)
    config = small_pipeline(tmp_path / "w", dataset).train
    with pytest.raises(DataError, match=r"validation rows .* labels \['unknown-lily'\] in column"):
        train_bp.fn(config=config)
    runs = client.search_runs(
        [client.get_experiment_by_name(config.experiment).experiment_id],
        filter_string="attributes.status = 'FAILED'",
    )
    assert any("unknown-lily" in r.data.tags.get("nnpipe.error", "") for r in runs)
    assert not list((tmp_path / "w" / "models").rglob("model.npz"))


def test_classification_config_in_yaml_and_its_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: classification\ntarget: label\n")
    config = load_config(path, "train_bp")
    assert config.task == "classification" and config.registered_model_name == "nnpipe-classifier"
    named = load_config(path, "train_bp", registered_model_name="iris")
    assert named.registered_model_name == "iris"
    assert load_config(None, "train_bp").registered_model_name == "nnpipe-regressor"
    with pytest.raises(
        ConfigError, match=r"task: Input should be 'regression' or 'classification'"
    ):
        load_config(None, "train_bp", task="clustering")


def test_pipeline_classification_needs_a_dataset_and_leaves_prepare_data_alone(tmp_path):
    with pytest.raises(ValueError, match="train.task 'classification' needs train.dataset"):
        PipelineConfig.model_validate({"train": {"task": "classification"}})
    config = small_pipeline(tmp_path, tmp_path / "species", validation_fraction=0.3)
    data, train, _ = stage_configs(config)
    assert train.dataset_path == tmp_path / "species"
    # prepare_data keeps fitting the regression set's scalers on its own target.
    assert (data.target, data.validation_fraction) == ("y", 0.2)
