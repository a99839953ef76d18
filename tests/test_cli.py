"""The ``nnpipe`` command: every subcommand's happy path and bad-input path, exit codes."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from nnpipe.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, build_parser, main

COMMANDS = ["make-data", "prepare", "train", "recall", "pipeline", "serve", "predict", "demo"]


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    assert code == EXIT_USAGE, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def cli(command: str, **paths) -> list[str]:
    """``command`` split into arguments, ``{name}`` placeholders filled from ``paths``."""
    return [part.format(**paths) for part in command.split()]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A small regression set and Hopfield set written through the command."""
    root = tmp_path_factory.mktemp("cli-data")
    reg = "make-data regression {root}/reg --rows 1600 --features 3 --rows-per-partition 400"
    hop = "make-data hopfield {root}/hop --rows 300 --neurons 32 --patterns 3"
    hop += " --rows-per-partition 100"
    assert main(cli(reg, root=root)) == EXIT_OK
    assert main(cli(hop, root=root)) == EXIT_OK
    return root


@pytest.fixture(scope="module")
def trained(prefect_harness, data, tmp_path_factory):
    """`nnpipe train` once for the module: (workdir, stdout, stderr)."""
    workdir = tmp_path_factory.mktemp("cli-train")
    out, err = io.StringIO(), io.StringIO()
    args = cli("train --dataset {data}/reg --workdir {w} --epochs 2", data=data, w=workdir)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    assert code == EXIT_OK, err.getvalue()
    return workdir, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(nnpipe, command):
    code, out, _ = nnpipe(command, "--help")
    assert code == EXIT_OK
    assert f"usage: nnpipe {command}" in out


def test_top_level_help_has_no_rest_double_backticks(nnpipe):
    code, out, _ = nnpipe("--help")
    assert code == EXIT_OK and "``" not in out and "`--debug`" in out


def test_bad_usage_exits_2_with_argparse_message(nnpipe):
    code, _, err = nnpipe("train", "--epochs", "many")
    assert code == EXIT_USAGE and "invalid int value: 'many'" in err
    code, _, err = nnpipe("no-such-command")
    assert code == EXIT_USAGE and "invalid choice" in err


def test_make_data_writes_partitions_and_refuses_to_overwrite(nnpipe, data, tmp_path):
    code, out, _ = nnpipe(
        "make-data",
        "classification",
        tmp_path / "c",
        "--rows",
        "500",
        "--rows-per-partition",
        "200",
    )
    assert code == EXIT_OK and "n_partitions=3" in out
    assert len(list((tmp_path / "c").glob("*.parquet"))) == 3
    before = sorted(p.stat().st_mtime_ns for p in (data / "reg").glob("*.parquet"))
    code, _, err = nnpipe("make-data", "regression", data / "reg", "--rows", "10")
    assert_clean_error(code, err, "already exists", "pass --overwrite")
    assert sorted(p.stat().st_mtime_ns for p in (data / "reg").glob("*.parquet")) == before
    code, _, err = nnpipe("make-data", "regression", tmp_path / "z", "--rows", "0")
    assert_clean_error(code, err, "n_rows=0")


def test_train_reports_negative_predictions_and_logs_to_mlflow(trained):
    from mlflow import MlflowClient

    trained, out, err = trained
    assert "R2 " in out and "predictions -" in out
    # Not a terminal: progress as plain lines on stderr, one per epoch.
    assert "[nnpipe] train_bp: 1/2 loss=" in err and "[nnpipe] train_bp: 2/2 loss=" in err

    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("nnpipe-train-bp").experiment_id],
        filter_string=f"params.`config.workdir` = '{trained}'",
    )
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["prediction_min"] < 0
    assert (trained / "models" / runs[0].info.run_id / "model.npz").is_file()


def test_train_bad_input_names_the_problem(prefect_harness, nnpipe, data, tmp_path):
    code, _, err = nnpipe("train", "--dataset", tmp_path / "missing", "--workdir", tmp_path)
    assert_clean_error(code, err, "missing")
    code, _, err = nnpipe(
        "train", "--dataset", data / "reg", "--target", "nope", "--workdir", tmp_path
    )
    assert_clean_error(code, err, "'nope'", "x0")
    code, _, err = nnpipe("train", "--dask-address", "localhost:8786")
    assert_clean_error(code, err, "tcp://")


def one_line_error(code: int, err: str, *needles: str) -> None:
    """Exit 2 with exactly one line besides the progress lines, naming ``needles``."""
    assert_clean_error(code, err, *needles)
    lines = [line for line in err.splitlines() if line and not line.startswith("[nnpipe]")]
    assert len(lines) == 1 and lines[0].startswith("nnpipe train: error: "), err


def test_train_classification_then_predict_labels_and_probabilities(
    prefect_harness, nnpipe, tmp_path
):
    made = cli(
        "make-data classification {d} --rows 1500 --rows-per-partition 300", d=tmp_path / "c"
    )
    assert main(made) == EXIT_OK
    code, out, err = nnpipe(
        *cli("train --dataset {d} --target label --task classification", d=tmp_path / "c"),
        *cli("--workdir {w} --epochs 3", w=tmp_path / "w"),
    )
    assert code == EXIT_OK, err
    accuracy = float(out.split("accuracy ")[1].split()[0])
    assert accuracy > 0.9 and "macro F1" in out and "classes 0, 1, 2" in out
    assert "[nnpipe] train_bp: 3/3 loss=" in err and "val_acc=" in err
    model = next((tmp_path / "w").glob("models/*/model.npz"))
    frame = pd.read_parquet(next((tmp_path / "c").glob("*.parquet"))).head(40)
    frame.drop(columns="label").to_csv(tmp_path / "in.csv", index=False)
    code, out, err = nnpipe("predict", model, tmp_path / "in.csv", tmp_path / "out.csv")
    assert code == EXIT_OK, err
    assert "labels in column 'prediction'" in out and "proba_0, proba_1, proba_2" in out
    written = pd.read_csv(tmp_path / "out.csv")
    assert np.mean(written["prediction"].to_numpy() == frame["label"].to_numpy()) > 0.9
    np.testing.assert_allclose(written.filter(like="proba_").sum(axis=1), 1.0, rtol=1e-5)


def test_train_classification_bad_labels_exit_2_in_one_line(
    prefect_harness, nnpipe, data, tmp_path
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nnpipe.data import TrainValidationSplit

    def write(name, labels):
        root = tmp_path / name
        root.mkdir()
        for i, part in enumerate(np.array_split(np.asarray(labels, dtype=object), 2)):
            x = np.random.default_rng(i).normal(size=len(part))
            pq.write_table(pa.table({"x0": x, "label": list(part)}), root / f"p-{i}.parquet")
        return root

    train = ("train", "--task", "classification", "--target", "label", "--workdir", tmp_path)
    code, _, err = nnpipe(*train, "--dataset", write("one", ["spam"] * 200))
    one_line_error(code, err, "only one class (['spam'])", "at least 2")
    regression = ("--target", "y", "--dataset", data / "reg")
    code, _, err = nnpipe("train", "--task", "classification", "--workdir", tmp_path, *regression)
    one_line_error(code, err, "'y' holds non-integer numbers", "looks continuous")
    held_out = np.flatnonzero(TrainValidationSplit(0.2, seed=0).validation_mask("p-1.parquet", 100))
    labels = np.array(["ham", "spam"] * 100, dtype=object)
    labels[100 + held_out[0]] = "eggs"  # a validation row of the second file
    code, _, err = nnpipe(*train, "--dataset", write("unseen", labels))
    one_line_error(code, err, "validation rows", "['eggs']", "no training row has")


def test_recall_then_rerun_skips_done_partitions(prefect_harness, nnpipe, data, tmp_path):
    args = ("recall", "--dataset", data / "hop", "--output", tmp_path / "out", "--json")
    code, out, err = nnpipe(*args)
    assert code == EXIT_OK, err
    first = json.loads(out)["summary"]
    assert first["n_probes"] == 300 and first["n_partitions_run"] == 3
    code, out, _ = nnpipe(*args)
    again = json.loads(out)["summary"]
    assert again["n_partitions_skipped"] == 3 and again["n_probes"] == 300
    assert len(list((tmp_path / "out").glob("*.parquet"))) == 3


def test_recall_bad_input_names_the_dataset(prefect_harness, nnpipe, data, tmp_path):
    code, _, err = nnpipe("recall", "--dataset", data / "reg", "--output", tmp_path)
    assert_clean_error(code, err, "no patterns/ directory")


def test_pipeline_runs_all_stages_from_a_yaml_config(prefect_harness, nnpipe, tmp_path):
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f"workdir: {tmp_path / 'w'}\n"
        "data:\n"
        "  regression: {n_rows: 1200, n_features: 3, rows_per_partition: 400}\n"
        "  hopfield: {n_neurons: 32, n_patterns: 3, n_probes: 200, rows_per_partition: 100}\n"
        "train: {hidden_layer_sizes: [8], max_epochs: 2}\n"
    )
    code, out, err = nnpipe("pipeline", "--config", config)
    assert code == EXIT_OK, err
    assert "R2" in out and "exact recall" in out
    assert "regression written, Hopfield written; standard scalers fitted" in out
    for stage in ("prepare_data", "train_bp", "recall_hopfield"):
        assert stage in out
    code, out, _ = nnpipe("pipeline", "--config", config, "--print-config")
    assert code == EXIT_OK and "max_epochs: 2" in out
    # --epochs overrides one key of the file's train section, not the whole section.
    code, out, _ = nnpipe("pipeline", "--config", config, "--epochs", "5", "--print-config")
    assert "max_epochs: 5" in out and "- 8\n" in out
    # Other sizes over the same workdir: refused at once, nothing trained or registered.
    models = set((tmp_path / "w" / "models").iterdir())
    config.write_text(config.read_text().replace("n_rows: 1200", "n_rows: 2400"))
    code, _, err = nnpipe("pipeline", "--config", config)
    assert_clean_error(code, err, "was made with n_rows=1200", "n_rows=2400", "--overwrite")
    assert set((tmp_path / "w" / "models").iterdir()) == models


def test_a_printed_pipeline_config_is_accepted_by_every_command(nnpipe, tmp_path):
    code, out, _ = nnpipe("pipeline", "--print-config", "--epochs", "4")
    assert code == EXIT_OK
    (tmp_path / "p.yaml").write_text(out)
    code, out, err = nnpipe("train", "--config", tmp_path / "p.yaml", "--print-config")
    assert code == EXIT_OK, err
    assert "max_epochs: 4" in out and "rule:" not in out  # train's section only
    for command in ("prepare", "recall"):
        code, _, err = nnpipe(command, "--config", tmp_path / "p.yaml", "--print-config")
        assert code == EXIT_OK, err


def test_pipeline_bad_config_exits_2_naming_the_key(nnpipe, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  epochs: 3\n")
    code, _, err = nnpipe("pipeline", "--config", config)
    assert_clean_error(code, err, "train.epochs: unknown key", "max_epochs")


def test_predict_from_local_npz_and_from_mlflow_uri(nnpipe, trained, data, tmp_path):
    from mlflow import MlflowClient

    model = next(trained[0].glob("models/*/model.npz"))
    frame = pd.read_parquet(next((data / "reg").glob("*.parquet")))
    frame.head(50).to_csv(tmp_path / "in.csv", index=False)
    code, out, err = nnpipe("predict", model, tmp_path / "in.csv", tmp_path / "out.parquet")
    assert code == EXIT_OK, err
    local = pd.read_parquet(tmp_path / "out.parquet")
    assert len(local) == 50 and "prediction" in local and (local["prediction"] < 0).any()
    run_id = model.parent.name
    assert MlflowClient().get_run(run_id).info.status == "FINISHED"
    code, _, err = nnpipe(
        "predict", f"runs:/{run_id}/model", tmp_path / "in.csv", tmp_path / "out.csv"
    )
    assert code == EXIT_OK, err
    served = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(served["prediction"], local["prediction"], rtol=1e-5)


def test_predict_bad_input_is_named(nnpipe, trained, tmp_path):
    model = next(trained[0].glob("models/*/model.npz"))
    pd.DataFrame({"a": [1.0]}).to_csv(tmp_path / "in.csv", index=False)
    code, _, err = nnpipe("predict", model, tmp_path / "in.csv", tmp_path / "o.csv")
    assert_clean_error(code, err, "missing feature columns", "x0")
    code, _, err = nnpipe("predict", model, tmp_path / "in.csv", tmp_path / "o.xlsx")
    assert_clean_error(code, err, "'.xlsx'", ".csv")
    code, _, err = nnpipe("predict", tmp_path / "none.npz", tmp_path / "in.csv", tmp_path / "o.csv")
    assert_clean_error(code, err, "does not exist")
    assert not (tmp_path / "o.csv").exists()


def test_predict_reads_model_directories_of_earlier_versions(nnpipe, trained, data, tmp_path):
    from nnpipe.core.trained_model import TrainedModel

    saved = TrainedModel.load(next(trained[0].glob("models/*/model.npz")))
    frame = pd.read_parquet(next((data / "reg").glob("*.parquet"))).head(30)
    frame.to_csv(tmp_path / "in.csv", index=False)
    # The values the command reads: the CSV text of the float32 columns, parsed as
    # float64, is not the float32 value itself, and the scaler now keeps the difference.
    want = saved.predict(pd.read_csv(tmp_path / "in.csv"))
    # The earlier layout: bare network as model.npz, scaler and column list beside it.
    old = tmp_path / "old"
    saved.network.save(old / "model.npz")
    saved.feature_scaler.save(old / "x_scaler.npz")
    (old / "model.json").write_text(json.dumps({"features": saved.feature_names}))
    code, _, err = nnpipe("predict", old, tmp_path / "in.csv", tmp_path / "out.csv")
    assert code == EXIT_OK, err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "out.csv")["prediction"], want, rtol=1e-6)
    # No column list saved: the numeric columns in file order, if there are as many.
    (old / "model.json").unlink()
    frame[saved.feature_names].to_csv(tmp_path / "x.csv", index=False)
    code, _, err = nnpipe("predict", old / "model.npz", tmp_path / "x.csv", tmp_path / "o.csv")
    assert code == EXIT_OK, err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "o.csv")["prediction"], want, rtol=1e-6)
    code, _, err = nnpipe("predict", old / "model.npz", tmp_path / "in.csv", tmp_path / "o.csv")
    assert_clean_error(code, err, "takes 3 features", "model.json", "TrainedModel.from_files")


def test_predict_non_numeric_value_is_named(nnpipe, trained, data, tmp_path):
    model = next(trained[0].glob("models/*/model.npz"))
    frame = pd.read_parquet(next((data / "reg").glob("*.parquet"))).head(5)
    frame["x1"] = frame["x1"].astype(object)
    frame.loc[2, "x1"] = "n/a?"
    frame.to_csv(tmp_path / "in.csv", index=False)
    code, _, err = nnpipe("predict", model, tmp_path / "in.csv", tmp_path / "o.csv")
    assert_clean_error(code, err, "feature column 'x1' is not numeric", "n/a?")
    assert not (tmp_path / "o.csv").exists()


def test_serve_registers_scheduled_deployments(prefect_harness, nnpipe, tmp_path):
    from prefect.client.orchestration import get_client

    schedules = tmp_path / "s.yaml"
    schedules.write_text(
        "deployments:\n"
        "  - name: nightly-test\n"
        "    flow: pipeline\n"
        "    cron: '15 3 * * *'\n"
        "    timezone: Europe/Paris\n"
        "    parameters: {train: {max_epochs: 2}}\n"
    )
    code, out, err = nnpipe(
        "serve", "--schedules", schedules, "--workdir", "s3://nnpipe-runs/work", "--run-once"
    )
    assert code == EXIT_OK, err
    assert "pipeline/nightly-test: cron '15 3 * * *' Europe/Paris" in out
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("pipeline/nightly-test")
    [schedule] = deployment.schedules
    assert schedule.schedule.cron == "15 3 * * *"
    assert schedule.schedule.timezone == "Europe/Paris"
    assert deployment.parameters["config"]["train"]["max_epochs"] == 2
    # --workdir reaches every deployment: a bucket prefix stays a URL.
    assert deployment.parameters["config"]["workdir"] == "s3://nnpipe-runs/work"
    assert deployment.entrypoint == "flows.pipeline.pipeline"


def test_serve_bad_schedule_is_named(nnpipe, tmp_path):
    schedules = tmp_path / "s.yaml"
    schedules.write_text("deployments:\n  - {name: x, flow: pipeline, cron: 'every day'}\n")
    code, _, err = nnpipe("serve", "--schedules", schedules, "--list")
    assert_clean_error(code, err, "invalid schedule 'every day'")
    schedules.write_text("deployments:\n  - {name: x, flow: fit_all, cron: '0 * * * *'}\n")
    code, _, err = nnpipe("serve", "--schedules", schedules, "--list")
    assert_clean_error(code, err, "'fit_all' is unknown", "train_bp")


def test_serve_lists_the_packaged_schedules(nnpipe):
    code, out, _ = nnpipe("serve", "--list")
    assert code == EXIT_OK
    assert "pipeline/nightly-pipeline" in out and "recall_hopfield/hourly-recall" in out


def test_demo_quick_prints_the_report(prefect_harness, nnpipe, tmp_path):
    code, out, err = nnpipe("demo", "--quick", "--workdir", tmp_path / "demo")
    assert code == EXIT_OK, err
    for needle in ("R2", "predictions", "negative", "exact recall", "MLflow runs", "make ui"):
        assert needle in out
    # The quick demo keeps its own data beside the full demo's (other sizes, same workdir).
    assert (tmp_path / "demo" / "quick" / "data" / "regression").is_dir()


def test_demo_bad_address_exits_2(nnpipe):
    code, _, err = nnpipe("demo", "--dask-address", "nowhere")
    assert_clean_error(code, err, "--dask-address 'nowhere'")


def test_a_failure_that_is_not_bad_input_exits_1(
    prefect_harness, nnpipe, data, tmp_path, monkeypatch
):
    # An MLflow server that does not answer: the run fails, it is not the user's input.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    code, _, err = nnpipe("train", "--dataset", data / "reg", "--workdir", tmp_path)
    assert code == EXIT_FAILURE, err
    assert "nnpipe train: failed:" in err and "Traceback" not in err


def test_parser_documents_the_cluster_and_server_settings():
    text = build_parser().format_help()
    for needle in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "--dask-address"):
        assert needle in text


def test_prepare_writes_data_and_scalers_or_names_what_is_missing(
    prefect_harness, nnpipe, tmp_path
):
    config = tmp_path / "data.yaml"
    config.write_text(
        "regression: {n_rows: 800, n_features: 2, rows_per_partition: 400}\n"
        "hopfield: {n_neurons: 16, n_patterns: 2, n_probes: 100, rows_per_partition: 50}\n"
    )
    code, out, err = nnpipe("prepare", "--config", config, "--workdir", tmp_path / "w")
    assert code == EXIT_OK, err
    assert "standard scalers fitted on" in out
    assert (tmp_path / "w" / "scalers" / "x_scaler.npz").is_file()
    # The same workdir with other sizes: refused before any run, naming both and the flag.
    bigger = tmp_path / "bigger.yaml"
    bigger.write_text(config.read_text().replace("n_rows: 800", "n_rows: 1200"))
    code, _, err = nnpipe("prepare", "--config", bigger, "--workdir", tmp_path / "w")
    assert_clean_error(code, err, "n_rows=800", "n_rows=1200", "--overwrite")
    assert len(err.strip().splitlines()) == 1
    code, out, err = nnpipe(
        "prepare", "--config", bigger, "--workdir", tmp_path / "w", "--overwrite"
    )
    assert code == EXIT_OK, err
    assert "1200" in (tmp_path / "w" / "data" / "regression" / "_dataset.json").read_text()
    config.write_text("generate: false\n")
    code, _, err = nnpipe("prepare", "--config", config, "--workdir", tmp_path / "empty")
    assert_clean_error(code, err, "does not exist and generate=false", "make-data")
