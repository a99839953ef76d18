"""`nnpipe sweep`: a trial equals `nnpipe train` of its config; --print-config; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from flows.datasets import write_dataset
from flows.sweep_config import parse_sweep_config
from nnpipe.cli import EXIT_OK, EXIT_USAGE
from nnpipe.core.trained_model import TrainedModel
from tests.test_cli import assert_clean_error


@pytest.fixture
def sweep_file(tmp_path):
    data = tmp_path / "reg"
    write_dataset("regression", data, n_rows=1600, n_features=3, rows_per_partition=400)

    def write(**values):
        config = {
            "workdir": str(tmp_path / "work"),
            "train": {
                "dataset": str(data),
                "hidden_layer_sizes": [8],
                "max_epochs": 3,
                "batch_size": 64,
                "registered_model_name": "sweep-cli-regressor",
            },
            "space": {"learning_rate_init": [3e-3, 3e-2]},
            **values,
        }
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write


def test_sweep_has_help(nnpipe):
    code, out, _ = nnpipe("sweep", "--help")
    assert code == EXIT_OK and "usage: nnpipe sweep" in out and "halving" in out


def test_each_trial_equals_nnpipe_train_of_its_config(
    prefect_harness, nnpipe, sweep_file, tmp_path
):
    code, out, err = nnpipe("sweep", "--config", sweep_file(), "--json")
    assert code == EXIT_OK, err
    summary = json.loads(out)["summary"]
    assert summary["n_trials"] == 2 and len(summary["leaderboard"]) == 2
    X = np.random.default_rng(1).normal(size=(20, 3))
    for row in summary["leaderboard"]:
        # The trial's config, as `nnpipe train` takes it, in a workdir of its own.
        lr = row["params"]["learning_rate_init"]
        best = yaml.safe_load(open(summary["best_config"]))
        flat = {**best, "learning_rate_init": lr, "workdir": str(tmp_path / f"train-{lr}")}
        path = tmp_path / f"train-{lr}.yaml"
        path.write_text(yaml.safe_dump(flat))
        code, out, err = nnpipe("train", "--config", path, "--json")
        assert code == EXIT_OK, err
        trained = json.loads(out)["summary"]
        trial = json.loads(
            (tmp_path / "work" / "sweeps" / summary["sweep_id"] / row["trial_id"])
            .joinpath("result-e0003.json")
            .read_text()
        )
        assert [h["val_loss"] for h in trained["history"]] == [
            h["val_loss"] for h in trial["history"]
        ]
        assert trained["best_loss"] == trial["val_loss"]
        assert trained["r2"] == trial["metrics"]["r2"]
        np.testing.assert_array_equal(
            TrainedModel.load(trained["model_path"]).predict(X),
            TrainedModel.load(trial["model_path"]).predict(X),
        )


def test_print_config_is_every_key_and_reads_back(nnpipe, sweep_file):
    code, out, err = nnpipe("sweep", "--config", sweep_file(), "--print-config")
    assert code == EXIT_OK, err
    printed = yaml.safe_load(out)
    assert {"train", "space", "strategy", "n_trials", "seed", "halving"} <= set(printed)
    assert printed["train"]["max_epochs"] == 3
    assert parse_sweep_config(printed).space == {"learning_rate_init": [3e-3, 3e-2]}


@pytest.mark.parametrize(
    ("values", "needles"),
    [
        ({"space": {"lr": [0.1]}}, ["space.lr", "allowed: activation, alpha"]),
        (
            {"space": {"alpha": {"uniform": [1, 0]}}, "strategy": "random", "n_trials": 1},
            ["empty range"],
        ),
        ({"strategy": "random", "n_trials": 0}, ["n_trials"]),
        (
            {"strategy": "halving", "halving": {"min_epochs": 3}},
            ["halving.min_epochs 3 does not fit"],
        ),
    ],
)
def test_bad_sweep_exits_2_in_one_line(nnpipe, sweep_file, values, needles, tmp_path):
    code, out, err = nnpipe("sweep", "--config", sweep_file(**values))
    assert_clean_error(code, err, *needles)
    assert len(err.strip().splitlines()) == 1 and out == ""
    assert not (tmp_path / "work" / "sweeps").exists()


def test_sweep_over_a_missing_dataset_exits_2_before_any_run(nnpipe, sweep_file, tmp_path):
    path = sweep_file()
    config = yaml.safe_load(path.read_text())
    config["train"]["dataset"] = str(tmp_path / "nowhere")
    path.write_text(yaml.safe_dump(config))
    code, _, err = nnpipe("sweep", "--config", path)
    assert_clean_error(code, err, "nowhere")
    assert code == EXIT_USAGE
