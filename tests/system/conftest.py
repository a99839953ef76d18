"""The compose topology as local processes, shared by the system tests of this package."""

from __future__ import annotations

import signal

import pytest

from tests.system.commands import LoopbackCluster

# The compose services every system test needs. The runner is started only by the
# test about it: the other tests run the pipeline with the `nnpipe` command, as a
# user would, and the runner's schedules would only add runs to the servers.
SERVERS = ("s3", "dask-scheduler", "dask-worker-1", "dask-worker-2", "mlflow", "prefect")


def _interrupt(signum, frame):
    # SIGTERM (a CI timeout, `kill`) becomes an interrupt, so pytest still runs the
    # finalizers that stop the servers instead of dying with them running.
    raise KeyboardInterrupt(f"received signal {signum}")


@pytest.fixture(scope="package")
def running_servers(tmp_path_factory):
    """Scheduler, two workers, MLflow and Prefect servers, started once for the package."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    compose = LoopbackCluster(tmp_path_factory.mktemp("cluster"))
    try:
        compose.start(SERVERS)
        # The bucket is made once the store answers; MLflow needs it only when the
        # first artifact arrives, so it starts meanwhile.
        took = compose.wait_healthy(["s3"])
        compose.run_to_completion("s3-bucket")
        took.update(compose.wait_healthy(SERVERS[1:]))
        compose.startup_seconds = took
        yield compose
    finally:
        compose.close()
        signal.signal(signal.SIGTERM, previous)
    # Stopping signals whole process groups: the servers' own children (uvicorn
    # workers, a nanny's worker process) must be gone as well.
    assert compose.surviving_groups() == [], "processes left running after the tests"


@pytest.fixture
def cluster(running_servers):
    """The servers, every one running: a service a test killed is started again first."""
    running_servers.ensure_running(SERVERS)
    return running_servers
