"""The compose topology as local processes, shared by the system tests of this package."""

from __future__ import annotations

import signal

import pytest

from tests.system.commands import LoopbackCluster

# The compose services every system test needs. The runner is started only by the
# test about it: the other tests run the pipeline with the `nnpipe` command, as a
# user would, and the runner's schedules would only add runs to the servers.
SERVERS = ("dask-scheduler", "dask-worker-1", "dask-worker-2", "mlflow", "prefect")


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
        compose.startup_seconds = compose.wait_healthy(SERVERS)
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
