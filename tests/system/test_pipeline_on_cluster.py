"""The whole pipeline on real servers, checked through the servers' own APIs.

The `nnpipe` command runs as a user would run it against a cluster:
``--dask-address`` names the scheduler, ``PREFECT_API_URL`` and
``MLFLOW_TRACKING_URI`` name the servers, and the data directory is the one the
workers also see (the compose file's shared volume).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from tests.system.processes import VENV_BIN

pytestmark = [pytest.mark.service, pytest.mark.slow]

# Small enough for a few seconds of work per stage on two cores, big enough that
# every stage has several partitions to spread over the workers.
PIPELINE_CONFIG = {
    "data": {
        "regression": {"n_rows": 3_000, "n_features": 4, "rows_per_partition": 500},
        "hopfield": {
            "n_neurons": 64,
            "n_patterns": 4,
            "n_probes": 600,
            "rows_per_partition": 100,
        },
    },
    "train": {"hidden_layer_sizes": [16], "max_epochs": 4, "batch_size": 128},
}


class CommandFailed(AssertionError):
    pass


def run_nnpipe(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 150) -> str:
    """Run `nnpipe ARGS` to completion in its own process group; return stdout."""
    proc = subprocess.Popen(
        [str(VENV_BIN / "nnpipe"), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise CommandFailed(
            f"nnpipe {args[0]} did not finish in {timeout} s\n{err[-3000:]}"
        ) from None
    finally:
        if proc.poll() is None:  # interrupted while waiting: leave nothing behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode != 0:
        raise CommandFailed(f"nnpipe {args[0]} exited {proc.returncode}\n{err[-3000:]}")
    return out


def flow_runs_by_name(prefect_api_url: str) -> dict[str, list]:
    """Every flow run the Prefect server recorded, grouped by flow name."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api=prefect_api_url) as client:
        runs = client.read_flow_runs()
        names = {f.id: f.name for f in client.read_flows()}
    grouped: dict[str, list] = {}
    for run in runs:
        grouped.setdefault(names[run.flow_id], []).append(run)
    return grouped


def probe_ids(directory: Path) -> np.ndarray:
    """All probe_id values of the Parquet files directly in ``directory`` (hidden files skipped)."""
    files = sorted(p for p in directory.glob("*.parquet") if not p.name.startswith("."))
    assert files, f"no Parquet files in {directory}"
    return np.concatenate(
        [pq.read_table(f, columns=["probe_id"]).column(0).to_numpy() for f in files]
    )


def test_pipeline_runs_on_the_cluster_and_is_tracked_on_the_servers(cluster, tmp_path):
    from mlflow.tracking import MlflowClient

    workdir = cluster.data_dir / "pipeline"
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump(PIPELINE_CONFIG))
    started = time.monotonic()
    out = run_nnpipe(
        [
            "pipeline",
            "--config",
            str(config),
            "--workdir",
            str(workdir),
            "--dask-address",
            cluster.dask_address,
            "--json",
        ],
        env=cluster.client_env(),
        cwd=tmp_path,
    )
    print(f"pipeline on the cluster: {time.monotonic() - started:.1f} s")
    result = json.loads(out)

    # Prefect: the pipeline's flow run, and each stage's, completed on the server.
    runs = flow_runs_by_name(cluster.prefect_api_url)
    assert "pipeline" in runs, f"flow runs on the server: {sorted(runs)}"
    for name in ("pipeline", "prepare_data", "train_bp", "recall_hopfield"):
        assert [r.state.type.value for r in runs.get(name, [])] == ["COMPLETED"], name

    # MLflow: the runs the flow reported, finished, with metrics and artifacts.
    client = MlflowClient(cluster.mlflow_uri)
    run_ids = result["run_ids"]
    assert {"prepare_data", "train_bp", "recall_hopfield"} <= set(run_ids)
    for stage, run_id in run_ids.items():
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED", stage
        assert run.data.metrics, f"{stage} run {run_id} logged no metrics"
    train = client.get_run(run_ids["train_bp"])
    history = client.get_metric_history(train.info.run_id, "train_loss")
    assert len(history) >= 2 and [m.step for m in history] == sorted(m.step for m in history)
    artifacts = {a.path for a in client.list_artifacts(train.info.run_id)}
    assert artifacts, "the training run stored no artifacts on the server"
    versions = client.search_model_versions("name='nnpipe-regressor'")
    assert [v.run_id for v in versions] == [train.info.run_id]
    assert versions[0].status == "READY"

    # The registered model loads back through the server's artifact proxy and predicts.
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(f"models:/nnpipe-regressor/{versions[0].version}")
    features = pq.read_table(sorted((workdir / "data" / "regression").rglob("*.parquet"))[0])
    frame = features.to_pandas().drop(columns=["y"]).head(5)
    predictions = np.asarray(model.predict(pd.DataFrame(frame))).ravel()
    assert predictions.shape == (5,) and np.isfinite(predictions).all()

    # Recall results: every probe of the input exactly once.
    recall = client.get_run(run_ids["recall_hopfield"])
    assert recall.data.metrics["n_probes"] == PIPELINE_CONFIG["data"]["hopfield"]["n_probes"]
    expected = probe_ids(workdir / "data" / "hopfield" / "probes")
    got = probe_ids(Path(result["summary"]["recall_hopfield"]["output_dir"]))
    assert len(got) == len(expected) == 600
    assert np.array_equal(np.sort(got), np.sort(expected))


def test_recall_survives_losing_a_worker_mid_job(cluster, tmp_path):
    from distributed import Client

    from flows.datasets import write_dataset

    # Big enough networks that a partition takes a noticeable fraction of a second.
    data = cluster.data_dir / "fault" / "hopfield"
    write_dataset(
        "hopfield",
        data,
        n_rows=3_200,
        n_neurons=1_200,
        n_patterns=30,
        rows_per_partition=200,
        seed=3,
    )
    output = cluster.data_dir / "fault" / "recall"
    with Client(cluster.dask_address, timeout=30) as monitor:
        monitor.wait_for_workers(2, timeout=60)
        victim = next(
            addr
            for addr, w in monitor.scheduler_info(n_workers=-1)["workers"].items()
            if w["name"] == "dask-worker-2"
        )
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "nnpipe"),
                "recall",
                "--dataset",
                str(data),
                "--output",
                str(output),
                "--workdir",
                str(cluster.data_dir / "fault"),
                "--dask-address",
                cluster.dask_address,
                "--json",
            ],
            env=cluster.client_env(),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            killed_while_running: list[str] = []
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                running = [
                    k for k in monitor.processing().get(victim, []) if "nnpipe-recall" in str(k)
                ]
                done = [p for p in output.glob("*.parquet") if not p.name.startswith(".")]
                if running and done:
                    cluster.kill("dask-worker-2")
                    killed_while_running = running
                    break
                time.sleep(0.05)
            assert killed_while_running, "the job ended before dask-worker-2 could be killed"
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert proc.returncode == 0, err[-3000:]
        # The scheduler lost the worker: the job was finished by the survivor.
        names = [w["name"] for w in monitor.scheduler_info(n_workers=-1)["workers"].values()]
        assert names == ["dask-worker-1"]
    try:
        summary = json.loads(out)["summary"]
        expected = probe_ids(data / "probes")
        got = probe_ids(output)
        assert len(got) == len(expected) == 3_200
        assert np.array_equal(np.sort(got), np.sort(expected)), "a probe is missing or repeated"
        assert summary["n_probes"] == 3_200
    finally:
        # Put the topology back for any test that runs after this one.
        if not cluster.processes["dask-worker-2"].running():
            cluster.start(["dask-worker-2"])
            cluster.wait_healthy(["dask-worker-2"])
