"""The whole pipeline on real servers, checked through the servers' own APIs.

The `nnpipe` command runs as a user would run it against a cluster:
``--dask-address`` names the scheduler, ``PREFECT_API_URL`` and
``MLFLOW_TRACKING_URI`` name the servers, and the data lives in the topology's
bucket (``s3://...``), which the runner, the workers and these tests all reach
with the AWS variables; nothing is shared on disk. ``cluster`` is the compose
topology as local processes here, and as podman containers in tests/containers,
which runs these same tests (``cluster.run_nnpipe`` runs the command in the
runner container there). The fault test drives the
recall job (the function the recall flow calls) from here, so that it can kill a
worker at a chosen moment: after the first partition is done, while that worker
holds recall tasks.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnpipe.data.partition_io import list_parquet_files, read_columns
from tests.system.commands import bucket_keys, bucket_url, s3_storage_options

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


def json_result(stdout: str) -> dict:
    """The JSON document `nnpipe ... --json` printed: stdout holds nothing else."""
    return json.loads(stdout)


def flow_runs_by_name(prefect_api_url: str, since: datetime) -> dict[str, list]:
    """The flow runs the Prefect server recorded since ``since``, grouped by flow name.

    Runs a deployment's schedule created (the runner's deployments) are left out, and
    so are those of other tests on the same server.
    """
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api=prefect_api_url) as client:
        runs = client.read_flow_runs()
        names = {f.id: f.name for f in client.read_flows()}
    grouped: dict[str, list] = {}
    for run in runs:
        if run.deployment_id is None and run.created >= since:
            grouped.setdefault(names[run.flow_id], []).append(run)
    return grouped


def probe_ids(directory: str, storage_options: dict) -> np.ndarray:
    """All probe_id values of the Parquet files under ``directory`` (hidden files skipped)."""
    files = list_parquet_files(directory, storage_options)
    assert files, f"no Parquet files in {directory}"
    return np.concatenate(
        [
            read_columns(f, ["probe_id"], storage_options=storage_options).column(0).to_numpy()
            for f in files
        ]
    )


def test_pipeline_runs_on_the_cluster_and_is_tracked_on_the_servers(cluster, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    # Everything the pipeline reads and writes is in the bucket.
    workdir = bucket_url(cluster, "pipeline")
    storage = s3_storage_options(cluster)
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump(PIPELINE_CONFIG))
    started, since = time.monotonic(), datetime.now(UTC)
    out = cluster.run_nnpipe(
        [
            "pipeline",
            "--config",
            cluster.file_for_runner(config),
            "--workdir",
            workdir,
            "--dask-address",
            cluster.runner_dask_address,
            "--json",
        ]
    )
    print(f"pipeline on the cluster: {time.monotonic() - started:.1f} s")
    result = json_result(out)

    # Prefect: the pipeline's flow run, and each stage's, completed on the server.
    runs = flow_runs_by_name(cluster.prefect_api_url, since)
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
    assert {"config.json", "plots"} <= artifacts, artifacts
    # Artifacts went through the server's proxy into its store, and come back intact.
    saved = client.download_artifacts(train.info.run_id, "config.json", str(tmp_path))
    assert json.loads(Path(saved).read_text())["max_epochs"] == 4
    assert [p.path for p in client.list_artifacts(train.info.run_id, "plots")] == [
        "plots/loss_curve.svg"
    ]
    # The server keeps them in the topology's bucket.
    prefix = f"mlflow-artifacts/{train.info.experiment_id}/{train.info.run_id}/artifacts/"
    assert f"{prefix}config.json" in bucket_keys(cluster, prefix)
    versions = client.search_model_versions("name='nnpipe-regressor'")
    assert [v.run_id for v in versions] == [train.info.run_id]
    assert versions[0].status == "READY"

    # The registered model loads back through the server's artifact proxy and predicts.
    import mlflow.pyfunc
    import pandas as pd

    monkeypatch.setenv("MLFLOW_TRACKING_URI", cluster.mlflow_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", cluster.mlflow_uri)

    model = mlflow.pyfunc.load_model(f"models:/nnpipe-regressor/{versions[0].version}")
    first = list_parquet_files(f"{workdir}/data/regression", storage)[0]
    features = read_columns(first, [f"x{i}" for i in range(4)], storage_options=storage)
    frame = features.to_pandas().head(5)
    predictions = np.asarray(model.predict(pd.DataFrame(frame))).ravel()
    assert predictions.shape == (5,) and np.isfinite(predictions).all()

    # The stages used the cluster's scheduler and its two workers, not a local cluster:
    # the scheduler counted the recall tasks it got back, one per probe partition.
    for stage in ("train_bp", "recall_hopfield"):
        params = client.get_run(run_ids[stage]).data.params
        assert params["cluster.scheduler"] == cluster.runner_dask_address, stage
        assert params["cluster.n_workers"] == "2", stage
    from distributed import Client

    def tasks_finished_by_prefix(dask_scheduler) -> dict[str, int]:
        # Runs on the scheduler (a local function travels by value): how many tasks
        # of each key prefix reached memory so far.
        return {
            name: int(prefix.state_counts["memory"])
            for name, prefix in dask_scheduler.task_prefixes.items()
        }

    with Client(cluster.dask_address, timeout=30) as dask_client:
        finished = dask_client.run_on_scheduler(tasks_finished_by_prefix)
    assert finished.get("nnpipe-recall", 0) >= 6, finished

    # Recall results: every probe of the input exactly once.
    recall = client.get_run(run_ids["recall_hopfield"])
    assert recall.data.metrics["n_probes"] == PIPELINE_CONFIG["data"]["hopfield"]["n_probes"]
    output = result["summary"]["recall_hopfield"]["output_dir"]
    assert output.startswith(f"{workdir}/"), output
    expected = probe_ids(f"{workdir}/data/hopfield/probes", storage)
    got = probe_ids(output, storage)
    assert len(got) == len(expected) == 600
    assert np.array_equal(np.sort(got), np.sort(expected))


def test_recall_job_survives_losing_a_worker_mid_job(cluster):
    from distributed import Client

    from flows.datasets import write_dataset
    from nnpipe.core.hopfield import HopfieldNetwork
    from nnpipe.data.partition_io import read_patterns
    from nnpipe.data.recall_job import (
        plan_partitions,
        read_probes,
        read_results,
        run_recall_job,
    )

    # Networks big enough that one partition takes a noticeable fraction of a second.
    # Probes and results are in the bucket: the workers read and write them there.
    storage = s3_storage_options(cluster)
    data = bucket_url(cluster, "fault", "hopfield")
    write_dataset(
        "hopfield",
        data,
        n_rows=2_400,
        n_neurons=800,
        n_patterns=20,
        rows_per_partition=150,
        storage_options=storage,
    )
    patterns = read_patterns(data, storage)
    network = HopfieldNetwork(rule="hebbian", random_state=0).fit(patterns)
    probes_dir, output = f"{data}/probes", bucket_url(cluster, "fault", "recall")
    killed: dict[str, list[str]] = {}

    pool = ThreadPoolExecutor(max_workers=1)
    with Client(cluster.dask_address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}

        def kill_once_busy(stats, n_done, n_todo):
            # After a result file lands, kill a worker while it holds recall tasks: the
            # job is under way, and that worker's tasks are lost with it. Which worker
            # holds them depends on the scheduler's timing, so take whichever does.
            if killed:
                return
            for address, keys in client.processing().items():
                held = [str(k) for k in keys if str(k).startswith("nnpipe-recall-")]
                if held and address in names:
                    cluster.kill(names[address])
                    killed["tasks"] = held
                    killed["at"] = [n_done, n_todo]
                    killed["name"] = [names[address]]
                    return

        # Bounded: a job that hangs fails the test (closing the client ends the job).
        job = pool.submit(
            run_recall_job,
            network,
            patterns,
            probes_dir,
            output,
            client=client,
            on_partition=kill_once_busy,
            storage_options=storage,
        )
        summary = job.result(timeout=120)
        survivors = [w["name"] for w in client.scheduler_info(n_workers=-1)["workers"].values()]
    pool.shutdown(wait=True)

    assert killed, "no worker held a recall task after the first partition finished"
    n_done, n_todo = killed["at"]
    assert n_done < n_todo, "the worker was killed after the job's last partition"
    assert survivors == sorted(set(names.values()) - set(killed["name"]))

    # Every probe exactly once, in one complete file per input partition.
    expected = probe_ids(probes_dir, storage)
    got = probe_ids(output, storage)
    assert len(got) == len(expected) == 2_400
    assert np.array_equal(np.sort(got), np.sort(expected)), "a probe is missing or repeated"
    assert summary.n_probes == 2_400 and summary.n_partitions_run == 16
    # The partitions the dead worker held were redone elsewhere, with the same results
    # as a recall done here: nothing was lost or corrupted on the way.
    plan = {_hash(p.output): p for p in plan_partitions(probes_dir, output, storage)}
    lost = [plan[key.split("-")[2]] for key in killed["tasks"]]
    results = read_results(output, columns=["probe_id", "state"], storage_options=storage)
    ids_col, states_col = (results.column(c).to_pylist() for c in ("probe_id", "state"))
    states = dict(zip(ids_col, states_col, strict=True))
    for part in lost:
        probes, _, ids = read_probes(part.source, "probe", None, storage)
        local = network.recall(probes).states  # (n, n_neurons)
        assert [states[int(i)] for i in ids] == local.tolist(), part.key


def _hash(path: str) -> str:
    # The recall job names its Dask tasks nnpipe-recall-<sha1(output)[:12]>-<uuid>.
    return hashlib.sha1(path.encode()).hexdigest()[:12]
