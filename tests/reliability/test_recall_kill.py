"""A recall job killed or stopped halfway: nothing left behind, every probe recalled once."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest
from mlflow import MlflowClient

from flows.datasets import write_dataset
from nnpipe.data.recall_job import read_results

from .conftest import one_line, own_prefect_server, run_main, sigkill_leaves_nothing, start

N_PROBES = 40_000


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """Enough partitions that a kill lands between them; written once, never modified."""
    data = tmp_path_factory.mktemp("recall-kill") / "hop"
    write_dataset("hopfield", data, n_rows=N_PROBES, n_neurons=100, n_patterns=5,
                  rows_per_partition=500)  # fmt: skip
    for path in data.rglob("*"):
        path.chmod(path.stat().st_mode & ~0o222)  # a job that writes here fails loudly
    return data


def recall_args(probes, tmp_path):
    return ["recall", "--dataset", probes, "--output", tmp_path / "results",
            "--workdir", tmp_path / "work", "--json"]  # fmt: skip


def wait_for_results(out_dir, proc, timeout=180.0) -> int:
    """The number of result files once the first exists (fails if the job ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = list(out_dir.glob("*.parquet"))
        if done:
            return len(done)
        assert proc.poll() is None, f"the job ended ({proc.returncode}) before any result"
        time.sleep(0.02)
    raise AssertionError(f"no recall result within {timeout} s")


def test_sigkill_during_recall_leaves_nothing_and_the_rerun_recalls_each_probe_once(
    probes, tmp_path, env, in_process
):
    args = recall_args(probes, tmp_path)
    proc = start(*args, env=own_prefect_server(env), cwd=tmp_path)
    wait_for_results(tmp_path / "results", proc)
    sigkill_leaves_nothing(proc)
    code, out, err = run_main(args)  # the same command again
    assert code == 0, err
    summary = json.loads(out)["summary"]
    assert summary["n_partitions_skipped"] >= 1  # what the killed job finished is kept
    ids = read_results(tmp_path / "results", ["probe_id"]).column("probe_id").to_numpy()
    assert len(ids) == N_PROBES and len(np.unique(ids)) == N_PROBES


def test_sigterm_during_recall_ends_the_run_killed_with_exit_143(probes, tmp_path, env):
    proc = start(*recall_args(probes, tmp_path), env=env, cwd=tmp_path)
    wait_for_results(tmp_path / "results", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert one_line((tmp_path / "err.txt").read_text()) == "nnpipe recall: terminated"
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("nnpipe-recall-hopfield")
    (run,) = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])[:1]
    assert run.info.status == "KILLED"
