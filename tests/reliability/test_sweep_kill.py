"""A sweep killed halfway: nothing left behind; the rerun trains only what was unfinished."""

from __future__ import annotations

import json
import time

import yaml

from flows.datasets import write_dataset

from .conftest import own_prefect_server, run_main, sigkill_leaves_nothing, start

N_TRIALS = 6


def sweep_file(tmp_path):
    data = tmp_path / "reg"
    write_dataset("regression", data, n_rows=1600, n_features=3, rows_per_partition=400)
    config = {
        "workdir": str(tmp_path / "work"),
        "train": {
            "dataset": str(data),
            "hidden_layer_sizes": [8],
            "max_epochs": 4,
            "batch_size": 32,
            "registered_model_name": "sweep-kill-regressor",
        },
        "space": {"learning_rate_init": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_sigkill_during_a_sweep_then_the_rerun_reuses_the_finished_trials(
    tmp_path, env, in_process
):
    args = ["sweep", "--config", sweep_file(tmp_path), "--json"]
    proc = start(*args, env=own_prefect_server(env), cwd=tmp_path)
    deadline = time.monotonic() + 180
    while not list((tmp_path / "work").glob("sweeps/*/trial-*/result-e*.json")):
        assert proc.poll() is None, f"the sweep ended ({proc.returncode}) before any trial"
        assert time.monotonic() < deadline, "no finished trial within 180 s"
        time.sleep(0.02)
    sigkill_leaves_nothing(proc)
    finished = len(list((tmp_path / "work").glob("sweeps/*/trial-*/result-e*.json")))
    code, out, err = run_main(args)  # the same command again
    assert code == 0, err
    summary = json.loads(out)["summary"]
    assert summary["trials_reused"] >= finished >= 1
    assert len(summary["leaderboard"]) == N_TRIALS
    assert len({row["trial_id"] for row in summary["leaderboard"]}) == N_TRIALS
