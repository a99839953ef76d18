"""The compose topology as local processes, shared by the system tests of this package."""

from __future__ import annotations

import signal

import pytest

from tests.system.processes import LocalCompose

# Every compose service the tests start; the runner is left out: the tests run
# the pipeline themselves with the `nnpipe` command, as a user would.
SERVERS = ("dask-scheduler", "dask-worker-1", "dask-worker-2", "mlflow", "prefect")


def _interrupt(signum, frame):
    # SIGTERM (a CI timeout, `kill`) becomes an interrupt, so pytest still runs the
    # finalizers that stop the servers instead of dying with them running.
    raise KeyboardInterrupt(f"received signal {signum}")


@pytest.fixture(scope="package")
def cluster(tmp_path_factory):
    """Scheduler, two workers, MLflow and Prefect servers running and healthy."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    compose = LocalCompose(tmp_path_factory.mktemp("cluster"))
    try:
        compose.start(SERVERS)
        compose.startup_seconds = compose.wait_healthy(SERVERS)
        yield compose
    finally:
        compose.close()
        signal.signal(signal.SIGTERM, previous)
