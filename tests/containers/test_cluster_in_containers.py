"""The image and docker/compose.yaml, run as containers: the loopback tests, and the image.

The pipeline and fault tests are tests/system's own, collected here again with
this package's ``cluster`` (podman containers instead of local processes).
"""

from __future__ import annotations

import json

import pytest

from tests.containers.conftest import SERVICES
from tests.system import test_pipeline_on_cluster as loopback

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_every_service_runs_as_the_non_root_image_user(cluster):
    for name in SERVICES:
        uid, user = cluster.exec(name, "sh", "-c", "id -u; id -un").split()
        assert (uid, user) == ("10001", "nnpipe"), name


def test_servers_listen_on_the_ports_compose_publishes(cluster):
    published = {name: cluster.published_ports(name) for name in SERVICES}
    assert sorted(published) == sorted(SERVICES)
    assert all(published[n] for n in ("dask-scheduler", "mlflow", "prefect")), published
    for name, ports in published.items():
        for port in ports:
            assert cluster.port_open(port), f"{name}: nothing listens on 127.0.0.1:{port}"


def test_workers_import_nnpipe_from_the_image_and_see_the_servers(cluster):
    from distributed import Client

    script = (
        "import json, os, nnpipe, flows; print(json.dumps([nnpipe.__file__, flows.__file__, "
        "os.environ['MLFLOW_TRACKING_URI'], os.environ['PREFECT_API_URL'], "
        "os.environ['AWS_ENDPOINT_URL']]))"
    )
    for name in ("dask-worker-1", "dask-worker-2"):
        facts = json.loads(cluster.exec(name, "python", "-c", script))
        assert facts[0].startswith("/opt/nnpipe/lib/"), facts
        assert facts[2:] == [
            f"http://mlflow:{cluster.variables['NNPIPE_MLFLOW_PORT']}",
            f"http://prefect:{cluster.variables['NNPIPE_PREFECT_PORT']}/api",
            cluster.variables["NNPIPE_S3_ENDPOINT_URL"],
        ]
    with Client(cluster.dask_address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert sorted(w["name"] for w in workers.values()) == ["dask-worker-1", "dask-worker-2"]


def test_runner_serves_the_flows_as_deployments_on_the_cluster(cluster):
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api=cluster.prefect_api_url) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        deployments = {(flows[d.flow_id], d.name): d for d in client.read_deployments()}
    assert sorted(deployments) == [
        ("pipeline", "nightly-pipeline"),
        ("recall_hopfield", "hourly-recall"),
    ]
    for key, deployment in deployments.items():
        config = deployment.parameters["config"]
        assert config["dask_address"] == cluster.runner_dask_address, key
        assert config["workdir"] == f"s3://{cluster.variables['NNPIPE_BUCKET']}/nnpipe-work", key


# Collected last, in this order: the worker-loss test kills a worker's container,
# which a test after it would have to start again.
test_pipeline_runs_on_the_cluster_and_is_tracked_on_the_servers = (
    loopback.test_pipeline_runs_on_the_cluster_and_is_tracked_on_the_servers
)
test_recall_job_survives_losing_a_worker_mid_job = (
    loopback.test_recall_job_survives_losing_a_worker_mid_job
)
