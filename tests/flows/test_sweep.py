"""The sweep_bp flow at small size: rungs, child runs, artifacts, champion, reruns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from flows.config import TrainConfig
from flows.datasets import write_dataset
from flows.sweep_bp import sweep_bp
from flows.sweep_config import parse_sweep_config
from flows.sweep_trials import attempts, make_trials, run_trial
from nnpipe.core.trained_model import TrainedModel
from nnpipe.tracking import ValidationScore, promote_if_better
from tests.flows.test_classification import write_species

pytestmark = pytest.mark.usefixtures("prefect_harness")

LEARNING_RATES = [1e-3, 3e-3, 1e-2, 3e-2]
MODEL_NAME = "sweep-test-regressor"


def halving_sweep(root, **values):
    return parse_sweep_config(
        {
            "workdir": str(root / "work"),
            "train": {
                "dataset": str(root / "reg"),
                "hidden_layer_sizes": [8],
                "max_epochs": 4,
                "batch_size": 64,
                "registered_model_name": MODEL_NAME,
            },
            "space": {"learning_rate_init": LEARNING_RATES},
            "strategy": "halving",
            "halving": {"min_epochs": 1, "eta": 2},
            **values,
        }
    )


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A halving sweep over four learning rates (rungs of 1, 2, 4 epochs), run twice."""
    root = tmp_path_factory.mktemp("sweep")
    write_dataset("regression", root / "reg", n_rows=1600, n_features=3, rows_per_partition=400)
    config = halving_sweep(root)
    first = sweep_bp(config=config)
    second = sweep_bp(config=config)
    return config, first, second


@pytest.fixture(scope="module")
def client():
    from mlflow import MlflowClient

    return MlflowClient()


def test_halving_continues_the_best_half_from_their_checkpoints(swept):
    config, first, _ = swept
    s = first["summary"]
    assert s["budgets"] == [1, 2, 4] and s["n_trials"] == 4
    rungs = sorted(row["rung"] for row in s["leaderboard"])
    assert rungs == [0, 0, 1, 2]  # 4 trials, then the best 2, then the best 1
    # Each trial trained only its own new epochs: 1 + 1 + 2 + 4, not 1*4 + 2*2 + 4.
    assert s["epochs_total"] == 8
    by_loss = {}
    for trial in make_trials(config):
        tried = attempts(trial)
        budgets = [a["budget"] for a in tried]
        assert [a["from_epoch"] for a in tried] == [0, *budgets[:-1]], tried
        by_loss[trial.trial_id] = json.loads(trial.result_path(1).read_text())["val_loss"]
    # The rung-1 trials are the two best of rung 0.
    rung1 = {row["trial_id"] for row in s["leaderboard"] if row["rung"] >= 1}
    assert rung1 == set(sorted(by_loss, key=by_loss.get)[:2])


def test_parent_and_child_runs_nest_with_params_epochs_and_rung(swept, client):
    _, first, _ = swept
    parent = first["run_ids"]["sweep_bp"]
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and run.data.tags["nnpipe.flow"] == "sweep_bp"
    children = client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'"
    )
    assert len(children) == 4
    board = {row["run_id"]: row for row in first["summary"]["leaderboard"]}
    for child in children:
        row = board[child.info.run_id]
        assert child.info.status == "FINISHED"
        assert float(child.data.params["learning_rate_init"]) == row["params"]["learning_rate_init"]
        assert child.data.metrics["rung"] == row["rung"]
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_loss")]
        assert steps == list(range(1, row["epochs"] + 1))
    assert run.data.metrics["best_val_loss"] == first["summary"]["best_val_loss"]


def test_parent_holds_leaderboard_plot_best_config_and_model(swept, client, tmp_path):
    config, first, _ = swept
    parent = first["run_ids"]["sweep_bp"]
    names = {a.path for a in client.list_artifacts(parent)}
    names |= {a.path for a in client.list_artifacts(parent, "plots")}
    assert {"leaderboard.json", "leaderboard.csv", "best_config.yaml", "model_file"} <= names
    assert "plots/val_loss_vs_params.png" in names
    table = json.loads(open(client.download_artifacts(parent, "leaderboard.json", tmp_path)).read())
    assert len(table["data"]) == 4 and "learning_rate_init" in table["columns"]
    best = first["summary"]["leaderboard"][0]
    text = open(client.download_artifacts(parent, "best_config.yaml", tmp_path)).read()
    best_config = TrainConfig.model_validate(yaml.safe_load(text))
    assert best_config.learning_rate_init == best["params"]["learning_rate_init"]
    model = client.download_artifacts(parent, "model_file/model.npz", tmp_path)
    X = np.random.default_rng(0).normal(size=(5, 3))
    local = TrainedModel.load(first["summary"]["best_model_path"])
    np.testing.assert_array_equal(TrainedModel.load(model).predict(X), local.predict(X))


def test_rerun_reuses_every_trial_and_keeps_the_champion(swept, client):
    config, first, second = swept
    assert second["summary"]["trials_reused"] == 4
    before, after = first["summary"]["leaderboard"], second["summary"]["leaderboard"]
    assert after == [
        {**row, "run_id": new["run_id"], "reused": True}
        for row, new in zip(before, after, strict=True)
    ]
    for trial in make_trials(config):  # no attempt was added by the rerun
        assert len(attempts(trial)) == len({a["budget"] for a in attempts(trial)})
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert first["summary"]["champion"]["moved"]
    assert not second["summary"]["champion"]["moved"]  # equal is not better
    assert first["summary"]["registered_model"].endswith(f"/{champion.version}")


def test_champion_moves_only_to_a_better_validation_score(swept, client):
    _, first, second = swept
    held = str(client.get_model_version_by_alias(MODEL_NAME, "champion").version)
    newer = second["summary"]["registered_model"].rsplit("/", 1)[1]
    # The sweep's best model is judged as train_bp's: R2 on the validation rows.
    r2 = first["summary"]["best_metrics"]["r2"]
    assert first["summary"]["champion"]["metric"] == "r2"
    kept = promote_if_better(
        client.tracking_uri, MODEL_NAME, newer, ValidationScore("r2", r2 - 0.01)
    )
    assert not kept["moved"] and kept["champion"] == held
    assert str(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == held
    moved = promote_if_better(
        client.tracking_uri, MODEL_NAME, newer, ValidationScore("r2", r2 + 0.01)
    )
    assert moved["moved"] and moved["previous"] == held
    assert str(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == newer


def test_an_interrupted_trial_continues_from_its_checkpoint(tmp_path):
    write_dataset("regression", tmp_path / "reg", n_rows=1600, n_features=3, rows_per_partition=400)
    config = halving_sweep(tmp_path, strategy="grid", space={"learning_rate_init": [1e-2, 3e-2]})
    first = make_trials(config)[0]
    # The state a sweep killed after two of the trial's four epochs leaves behind.
    inputs = _inputs(config)
    run_trial(first, 2, *inputs)
    first.result_path(2).unlink()
    result = sweep_bp(config=config)
    assert [a["from_epoch"] for a in attempts(first)] == [0, 2]
    row = next(r for r in result["summary"]["leaderboard"] if r["trial_id"] == first.trial_id)
    assert row["epochs"] == 4 and not row["reused"]
    # Its task run a second time (a scheduler or Prefect re-running a finished task)
    # reads the result back: no training, no new attempt.
    assert run_trial(first, 4, *inputs)["val_loss"] == row["val_loss"]
    assert len(attempts(first)) == 2
    # The same as the trial trained without a stop.
    whole = halving_sweep(
        tmp_path,
        strategy="grid",
        workdir=str(tmp_path / "whole"),
        space={"learning_rate_init": [1e-2]},
    )
    again = run_trial(make_trials(whole)[0], 4, *inputs)
    assert losses(again["history"]) == losses(result_history(first, 4))
    assert again["val_loss"] == row["val_loss"]


def losses(history):
    return [(h["epoch"], h["train_loss"], h["val_loss"]) for h in history]


def result_history(trial, budget):
    return json.loads(trial.result_path(budget).read_text())["history"]


def _inputs(config):
    from flows.cluster import dask_client
    from flows.sweep_bp import trial_inputs
    from flows.train_bp import open_dataset

    trials = make_trials(config)
    with dask_client() as client:
        inputs = trial_inputs.fn(trials, open_dataset.fn(config.train), client)
    return inputs[trials[0].trial_id]


def test_classification_sweep_ranks_by_log_loss_and_reports_accuracy(tmp_path):
    dataset, _, _ = write_species(tmp_path / "species", n=800)
    config = parse_sweep_config(
        {
            "workdir": str(tmp_path / "work"),
            "train": {
                "task": "classification",
                "dataset": str(dataset),
                "target": "species",
                "hidden_layer_sizes": [8],
                "max_epochs": 2,
                "batch_size": 64,
                "registered_model_name": "sweep-test-classifier",
            },
            "space": {"learning_rate_init": {"loguniform": [1e-3, 3e-2]}},
            "strategy": "random",
            "n_trials": 2,
            "seed": 1,
        }
    )
    s = sweep_bp(config=config)["summary"]
    losses = [row["val_loss"] for row in s["leaderboard"]]
    assert losses == sorted(losses)
    assert all(0 <= row["metrics"]["accuracy"] <= 1 for row in s["leaderboard"])
    labels = TrainedModel.load(s["best_model_path"]).predict(np.zeros((2, 3)))
    assert set(labels) <= {"setosa", "versicolor", "virginica"}
