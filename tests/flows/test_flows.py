"""The flows end to end at small size, read back from MLflow and the Prefect API."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest

from flows.config import PipelineConfig, RecallConfig
from flows.pipeline import pipeline, stage_configs
from flows.recall_hopfield import check_inputs, recall_hopfield
from flows.train_bp import train_bp
from nnpipe.core.trained_model import TrainedModel
from nnpipe.data import write_hopfield_dataset
from nnpipe.data.recall_job import read_results

pytestmark = pytest.mark.usefixtures("prefect_harness")


def small_config(workdir, **train) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "workdir": str(workdir),
            "data": {
                "regression": {"n_rows": 2_400, "n_features": 4, "rows_per_partition": 600},
                "hopfield": {
                    "n_neurons": 40,
                    "n_patterns": 3,
                    "n_probes": 600,
                    "rows_per_partition": 150,
                },
            },
            "train": {
                "hidden_layer_sizes": [16],
                "max_epochs": 3,
                "batch_size": 64,
                "learning_rate_init": 0.01,
                **train,
            },
            "recall": {"max_iter": 20, "pattern_shape": [5, 8]},
        }
    )


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pipeline")
    config = small_config(workdir)
    return config, pipeline(config=config)


@pytest.fixture(scope="module")
def client():
    from mlflow import MlflowClient

    return MlflowClient()  # MLFLOW_TRACKING_URI: the session's temporary store


def test_every_stage_has_a_finished_mlflow_run(ran, client):
    _, result = ran
    assert set(result["run_ids"]) == {"prepare_data", "train_bp", "recall_hopfield"}
    for flow_name, run_id in result["run_ids"].items():
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["nnpipe.flow"] == flow_name


def test_train_run_holds_params_epoch_metrics_artifacts_and_model(ran, client):
    config, result = ran
    run_id = result["run_ids"]["train_bp"]
    run = client.get_run(run_id)
    assert run.data.params["config.max_epochs"] == "3"
    assert run.data.params["data.features"] == json.dumps(["x0", "x1", "x2", "x3"])
    assert run.data.params["scaler_source"] == "prepare_data"  # prepare_data's scalers reused
    history = client.get_metric_history(run_id, "train_loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert run.data.metrics["r2"] == pytest.approx(result["summary"]["train_bp"]["r2"])
    assert run.data.metrics["r2"] > 0.5
    artifacts = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert "plots/loss_curve.svg" in artifacts
    curve = ElementTree.parse(client.download_artifacts(run_id, "plots/loss_curve.svg"))
    lines = curve.getroot().findall("{http://www.w3.org/2000/svg}polyline")
    assert [len(line.get("points").split()) for line in lines] == [3, 3]  # train, validation
    # CPU and memory over the run (MLflow's system metrics), sampled from its start.
    for name in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"):
        samples = client.get_metric_history(run_id, name)
        assert samples and all(m.value >= 0 for m in samples), name
    registered = result["summary"]["train_bp"]["registered_model"]
    name, version = registered.removeprefix("models:/").split("/")
    assert client.get_model_version(name, version).run_id == run_id


def test_runs_show_their_dataset_description_and_source_in_the_ui(ran, client):
    config, result = ran
    ids = result["run_ids"]
    train = client.get_run(ids["train_bp"])
    (data_input,) = train.inputs.dataset_inputs
    dataset = data_input.dataset
    assert dataset.name == config.data.regression_path.name
    assert json.loads(dataset.source) == {"uri": str(config.data.regression_path)}
    assert json.loads(dataset.profile)["num_rows"] == 2_400
    columns = json.loads(dataset.schema)["mlflow_colspec"]
    # make-data writes float32 columns: MLflow's "float".
    assert [(c["name"], c["type"]) for c in columns] == [
        *((f"x{i}", "float") for i in range(4)),
        ("y", "float"),
    ]
    assert [(t.key, t.value) for t in data_input.tags] == [("mlflow.data.context", "training")]
    # The same data, the same digest, in the run that prepared it.
    prep = client.get_run(ids["prepare_data"]).inputs.dataset_inputs
    assert [d.dataset.digest for d in prep] == [dataset.digest]
    for flow_name, run_id in ids.items():
        tags = client.get_run(run_id).data.tags
        assert tags["mlflow.source.name"] == f"flows/{flow_name}.py:{flow_name}"
        assert tags["mlflow.source.type"] == "JOB"
        assert tags["mlflow.note.content"].startswith(f"```\n{flow_name}")
    assert "R2 " in train.data.tags["mlflow.note.content"]


def test_logged_model_predicts_negative_targets_like_the_local_files(ran):
    import mlflow

    config, result = ran
    summary = result["summary"]["train_bp"]
    assert summary["target_min"] < 0 and summary["prediction_min"] < 0
    X = pd.DataFrame(
        np.random.default_rng(0).normal(size=(20, 4)), columns=["x0", "x1", "x2", "x3"]
    )
    served = np.asarray(mlflow.pyfunc.load_model(summary["model_uri"]).predict(X)).ravel()
    model_dir = config.workdir / "models" / result["run_ids"]["train_bp"]
    # The saved file's parts, applied by hand: scale the features, then predict.
    saved = TrainedModel.load(model_dir / "model.npz")
    local = saved.network.predict(saved.feature_scaler.transform(X.to_numpy()))
    np.testing.assert_allclose(served, np.ravel(local), rtol=1e-6)


def test_recall_run_metrics_match_the_result_files(ran, client):
    config, result = ran
    summary = result["summary"]["recall_hopfield"]
    table = read_results(summary["output_dir"])
    assert table.num_rows == 600 == summary["n_probes"]
    assert np.unique(table.column("probe_id").to_numpy()).size == 600
    run = client.get_run(result["run_ids"]["recall_hopfield"])
    exact = table.column("exact").to_numpy().mean()
    assert run.data.metrics["exact_recall_rate"] == pytest.approx(exact)
    assert run.data.metrics["n_probes"] == 600
    paths = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"recall_report.json", "plots", "network"} <= paths


def test_train_run_artifacts_hold_the_model_file_with_its_scaler(ran, client, tmp_path):
    run_id = ran[1]["run_ids"]["train_bp"]
    assert [a.path for a in client.list_artifacts(run_id, "model_file")] == ["model_file/model.npz"]
    saved = TrainedModel.load(
        client.download_artifacts(run_id, "model_file/model.npz", str(tmp_path))
    )
    assert saved.feature_names == ["x0", "x1", "x2", "x3"] and saved.feature_scaler is not None


def test_recall_run_logs_the_capacity_curve_at_its_size(ran, client, tmp_path):
    run_id = ran[1]["run_ids"]["recall_hopfield"]
    assert "plots/capacity.png" in {a.path for a in client.list_artifacts(run_id, "plots")}
    table = json.loads(
        Path(client.download_artifacts(run_id, "capacity.json", str(tmp_path))).read_text()
    )
    assert set(table["n_neurons"]) == {40} and 3 / 40 in table["load"]  # this run's own load
    assert table["exact_recall"][0] > table["exact_recall"][-1]  # recall falls with load


def test_run_names_tell_the_runs_apart_and_match_prefect(ran, client):
    from prefect.client.orchestration import get_client

    names = {flow: client.get_run(rid).info.run_name for flow, rid in ran[1]["run_ids"].items()}
    assert names["train_bp"].endswith(" (regression 16)")
    assert names["recall_hopfield"].endswith(" (hopfield hebbian-async)")
    assert names["prepare_data"].endswith(" (2400 rows)")
    # First the stage's Prefect flow-run name (e.g. "witty-lynx"), unique per run.
    prefixes = {name.split(" (")[0] for name in names.values()}
    with get_client(sync_client=True) as prefect:
        flow_runs = {run.name for run in prefect.read_flow_runs()}
    assert len(prefixes) == 3 and prefixes <= flow_runs


def test_recall_run_logs_pictures_of_sampled_probes(ran, client, tmp_path):
    run_id = ran[1]["run_ids"]["recall_hopfield"]
    assert "plots/recall_pictures.png" in {a.path for a in client.list_artifacts(run_id, "plots")}
    png = Path(client.download_artifacts(run_id, "plots/recall_pictures.png", str(tmp_path)))
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    # 8 probes of a 5x8 pattern: 3 panels of 1.3 * 8 / 5 = 2.08 in and 4 gaps of
    # 0.35 in wide; 8 rows of 1.3 + 0.4 in and 0.6 in on top (100 dpi).
    assert struct.unpack(">II", data[16:24]) == (764, 1420)


def test_recall_rejects_a_pattern_shape_that_does_not_cover_the_patterns(tmp_path):
    write_hopfield_dataset(tmp_path / "hop", n_patterns=2, n_units=40, n_probes=10)
    config = RecallConfig(dataset=tmp_path / "hop", pattern_shape=[6, 7])
    message = (
        f"pattern_shape [6, 7] has 42 cells but the patterns in '{tmp_path / 'hop'}' have 40 "
        "neurons; rows * cols must equal the pattern length"
    )
    with pytest.raises(ValueError) as info:
        check_inputs(config)
    assert str(info.value) == message
    check_inputs(config.model_copy(update={"pattern_shape": (4, 10)}))  # 40 cells: fine


def test_recall_with_a_wrong_pattern_shape_fails_before_recalling(ran, client):
    config, _ = ran
    _, _, recall = stage_configs(config)
    bad = recall.model_copy(
        update={"pattern_shape": (6, 7), "output": config.workdir / "recall-bad-shape"}
    )
    with pytest.raises(ValueError, match=r"pattern_shape \[6, 7\] has 42 cells .* 40 neurons"):
        recall_hopfield.fn(config=bad)
    from mlflow.entities import ViewType

    runs = client.search_runs(
        [client.get_experiment_by_name(bad.experiment).experiment_id],
        filter_string="attributes.status = 'FAILED'",
        run_view_type=ViewType.ALL,
    )
    assert runs and "pattern_shape [6, 7]" in runs[0].data.tags["nnpipe.error"]
    assert not (config.workdir / "recall-bad-shape").exists()  # nothing written


def test_prefect_recorded_the_pipeline_and_its_three_subflows(ran):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        runs = prefect.read_flow_runs()
        names = {prefect.read_flow(r.flow_id).name for r in runs if r.state.is_completed()}
    assert {"pipeline", "prepare_data", "train_bp", "recall_hopfield"} <= names


def test_one_pipeline_is_one_tree_of_runs_linked_to_prefect(ran, client):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    config, result = ran
    parent = client.get_run(result["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["nnpipe.flow"] == "pipeline"
    assert parent.data.metrics["train_r2"] == pytest.approx(result["summary"]["train_bp"]["r2"])
    assert parent.data.tags["mlflow.note.content"].startswith("```\npipeline finished in")
    experiment = client.get_experiment_by_name(config.experiment)
    assert parent.info.experiment_id == experiment.experiment_id
    with get_client(sync_client=True) as prefect:
        for flow_name, run_id in [("pipeline", parent.info.run_id), *result["run_ids"].items()]:
            run = client.get_run(run_id)
            assert run.info.experiment_id == experiment.experiment_id, flow_name
            if flow_name != "pipeline":
                assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
            flow_run = prefect.read_flow_run(run.data.tags["prefect.flow_run_id"])
            assert prefect.read_flow(flow_run.flow_id).name == flow_name
            assert run.data.tags["prefect.flow_run_name"] == flow_run.name
            artifacts = prefect.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])
                )
            )
            key = flow_name.replace("_", "-")
            by_key = {a.key: a for a in artifacts}
            assert set(by_key) == {f"{key}-report", f"{key}-metrics", f"{key}-mlflow-run"}
            link = by_key[f"{key}-mlflow-run"].data
            assert f"/#/experiments/{experiment.experiment_id}/runs/{run_id}" in link
            assert by_key[f"{key}-report"].data.startswith(f"```\n{flow_name}")
            assert by_key[f"{key}-metrics"].type == "table"
    recall_table = json.loads(by_key["recall-hopfield-metrics"].data)  # the last in the loop
    assert any(row["metric"] == "exact_recall_rate" for row in recall_table)


def test_progress_and_report_are_in_the_prefect_flow_run_logs(ran, client):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    config, result = ran
    tags = client.get_run(result["run_ids"]["train_bp"]).data.tags
    with get_client(sync_client=True) as prefect:
        flow_run_id = prefect.read_flow_run(tags["prefect.flow_run_id"]).id
        logs = prefect.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    messages = [log.message for log in logs if log.name == "nnpipe.progress"]
    epochs = config.train.max_epochs
    assert [m.split(" ")[1] for m in messages if m.startswith("train_bp: ")] == [
        "started",
        *(f"{e}/{epochs}" for e in range(1, epochs + 1)),
    ]
    assert any(m.startswith("train_bp:\n  ") and "R2 " in m for m in messages)


def test_recall_rerun_skips_every_finished_partition(ran, client):
    config, result = ran
    _, _, recall = stage_configs(config)
    again = recall_hopfield.fn(config=recall)
    s = again["summary"]
    assert s["n_partitions_run"] == 0 and s["n_partitions_skipped"] == 4
    assert s["exact_recall_rate"] == result["summary"]["recall_hopfield"]["exact_recall_rate"]
    assert client.get_run(again["run_ids"]["recall_hopfield"]).info.status == "FINISHED"


def test_failed_training_is_marked_failed_in_mlflow_with_the_error(ran, client):
    config, _ = ran
    bad = config.train.model_copy(update={"target": "no_such_column"})
    with pytest.raises(ValueError, match="no_such_column"):
        train_bp.fn(config=bad)
    from mlflow.entities import ViewType

    runs = client.search_runs(
        [client.get_experiment_by_name(bad.experiment).experiment_id],
        filter_string="attributes.status = 'FAILED'",
        run_view_type=ViewType.ALL,
    )
    assert runs and "no_such_column" in runs[0].data.tags["nnpipe.error"]
