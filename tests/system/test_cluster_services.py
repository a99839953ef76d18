"""The compose services, started from their own command lines, answer on their own APIs."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

import pytest

pytestmark = [pytest.mark.service, pytest.mark.slow]


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of a GET, without raising on an error status."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _worker_facts() -> dict[str, str | None]:
    import flows
    import nnpipe

    return {
        "nnpipe": nnpipe.__file__,
        "flows": flows.__file__,
        "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI"),
        "PREFECT_API_URL": os.environ.get("PREFECT_API_URL"),
        "AWS_ENDPOINT_URL": os.environ.get("AWS_ENDPOINT_URL"),
    }


def test_dask_scheduler_has_both_workers_and_they_can_run_nnpipe(cluster):
    import cloudpickle
    from distributed import Client

    status, body = http_get(f"{cluster.dask_http}/health")
    assert (status, body) == (200, "ok")
    with Client(cluster.dask_address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert sorted(w["name"] for w in workers.values()) == ["dask-worker-1", "dask-worker-2"]
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
        assert all(w["nthreads"] == 1 for w in workers.values())
        # Workers import nnpipe and the flows, and report to the same servers as the runner.
        # This module is not importable on the workers: send _worker_facts by value.
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            facts = client.run(_worker_facts)
        finally:
            cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        for fact in facts.values():
            assert fact["MLFLOW_TRACKING_URI"] == cluster.mlflow_uri
            assert fact["PREFECT_API_URL"] == cluster.prefect_api_url
            # The bucket, not a shared directory, is where they find the data.
            assert fact["AWS_ENDPOINT_URL"] == cluster.variables["NNPIPE_S3_ENDPOINT_URL"]
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6


def test_mlflow_server_answers_and_checks_the_host_header(cluster):
    from mlflow.tracking import MlflowClient

    assert http_get(f"{cluster.mlflow_uri}/health") == (200, "OK")
    port = cluster.variables["NNPIPE_MLFLOW_PORT"]
    search = f"{cluster.mlflow_uri}/api/2.0/mlflow/experiments/search?max_results=5"
    # The service name other containers use is allowed; an unknown host is refused.
    assert http_get(search, {"Host": f"mlflow:{port}"})[0] == 200
    assert http_get(search, {"Host": f"localhost:{port}"})[0] == 200
    assert http_get(search, {"Host": "attacker.example"})[0] == 403
    names = [e.name for e in MlflowClient(cluster.mlflow_uri).search_experiments()]
    assert "Default" in names


def test_prefect_server_answers(cluster):
    print("startup seconds:", cluster.startup_seconds)
    from prefect.client.orchestration import SyncPrefectClient

    assert http_get(f"{cluster.prefect_api_url}/health") == (200, "true")
    with SyncPrefectClient(api=cluster.prefect_api_url) as client:
        assert client.api_healthcheck() is None  # None means healthy
        assert client.read_flow_runs() == []


def test_runner_serves_the_flows_as_scheduled_deployments(cluster):
    from prefect.client.orchestration import SyncPrefectClient

    cluster.start(["runner"])
    try:
        # Its compose healthcheck: the runner's own web server, up once it has
        # registered the deployments and is polling for their runs.
        cluster.wait_healthy(["runner"], timeout=120)
        with SyncPrefectClient(api=cluster.prefect_api_url) as client:
            flows = {f.id: f.name for f in client.read_flows()}
            deployments = {(flows[d.flow_id], d.name): d for d in client.read_deployments()}
    finally:
        cluster.stop("runner")
    crons = {key: [s.schedule.cron for s in d.schedules] for key, d in deployments.items()}
    assert crons == {
        ("pipeline", "nightly-pipeline"): ["0 2 * * *"],
        ("recall_hopfield", "hourly-recall"): ["30 * * * *"],
    }
    for key, deployment in deployments.items():
        # Runs the runner starts use the cluster its command line names.
        assert deployment.parameters["config"]["dask_address"] == cluster.dask_address, key
