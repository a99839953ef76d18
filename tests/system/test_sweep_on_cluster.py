"""A sweep on real servers, with a Dask worker SIGKILLed while it trains a trial.

`nnpipe sweep --dask-address ...` runs as a user would run it; this test watches
the scheduler and the trial directories, and kills the worker process group
holding a trial task once another trial has finished and this one has a
checkpoint. Only that trial may run again (from its checkpoint); every finished
trial must be trained exactly once, and the leaderboard must hold every trial once.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from flows.sweep_config import parse_sweep_config
from flows.sweep_trials import attempts, epochs_checkpointed, finished_result, make_trials
from tests.system.commands import run_nnpipe
from tests.system.test_pipeline_on_cluster import json_result

pytestmark = [pytest.mark.service, pytest.mark.slow]

EPOCHS = 8


def sweep_yaml(cluster, path):
    from flows.datasets import write_dataset

    data = cluster.data_dir / "sweep" / "reg"
    if not data.exists():
        write_dataset("regression", data, n_rows=6000, n_features=6, rows_per_partition=1000)
    config = {
        "workdir": str(cluster.data_dir / "sweep" / "work"),
        "train": {
            "dataset": str(data),
            "hidden_layer_sizes": [64, 64],
            "max_epochs": EPOCHS,
            "n_iter_no_change": EPOCHS,  # every trial trains its full budget
            "batch_size": 32,
            "registered_model_name": "sweep-cluster-regressor",
        },
        "space": {"learning_rate_init": [1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2]},
        "strategy": "grid",
    }
    path.write_text(yaml.safe_dump(config))
    return parse_sweep_config(config)


def test_sweep_survives_losing_a_worker_and_trains_no_finished_trial_twice(cluster, tmp_path):
    from distributed import Client

    config = sweep_yaml(cluster, tmp_path / "sweep.yaml")
    trials = {t.trial_id: t for t in make_trials(config)}
    killed: dict[str, object] = {}
    stop = threading.Event()

    def watch(client, names):
        # Kill the worker training a trial that has a checkpoint, once another is done.
        while not stop.is_set() and not killed:
            finished = [t for t in trials.values() if finished_result(t, EPOCHS)]
            for address, keys in client.processing().items():
                held = [str(k) for k in keys if str(k).startswith("nnpipe-trial-")]
                for key in held:
                    trial = trials[key.split("-")[2] + "-" + key.split("-")[3]]
                    done = epochs_checkpointed(trial)
                    if finished and 1 <= done < EPOCHS - 1 and address in names:
                        cluster.kill(names[address])
                        killed.update(
                            trial=trial.trial_id,
                            at_epoch=done,
                            finished=[t.trial_id for t in finished],
                        )
                        return
            time.sleep(0.05)

    with Client(cluster.dask_address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
        with ThreadPoolExecutor(max_workers=1) as pool:
            watcher = pool.submit(watch, client, names)
            try:
                args = ["sweep", "--config", str(tmp_path / "sweep.yaml")]
                args += ["--dask-address", cluster.dask_address, "--json"]
                out = run_nnpipe(args, cluster.client_env(), tmp_path, timeout=400)
            finally:
                stop.set()
            watcher.result()

    assert killed, "no worker was killed while it trained a trial after another finished"
    summary = json_result(out)["summary"]
    board = [row["trial_id"] for row in summary["leaderboard"]]
    assert sorted(board) == sorted(trials), "a trial is missing or repeated"
    assert all(row["epochs"] == EPOCHS for row in summary["leaderboard"])
    for trial_id, trial in trials.items():
        tried = attempts(trial)
        if trial_id == killed["trial"]:
            # Started again on the surviving worker, after its last checkpoint.
            assert len(tried) == 2, tried
            assert tried[1]["from_epoch"] >= killed["at_epoch"] >= 1
        else:
            assert len(tried) == 1, (trial_id, tried)  # never trained twice
    result = json.loads(trials[killed["trial"]].result_path(EPOCHS).read_text())
    assert result["resumed_from"] >= 1 and len(result["history"]) == EPOCHS

    from mlflow import MlflowClient

    mlflow = MlflowClient(cluster.mlflow_uri)
    parent = mlflow.get_run(json_result(out)["run_ids"]["sweep_bp"])
    children = mlflow.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(children) == len(trials)
    assert all(c.info.status == "FINISHED" for c in children)
