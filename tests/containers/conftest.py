"""The compose topology as podman containers, for the tests of this package.

`make container-test` (docker/container-test.sh) builds the image and runs these
tests with ``NNPIPE_CONTAINER_IMAGE`` (the image id) and ``NNPIPE_CONTAINER_RUN``
(the label its trap removes by); without them, tests/conftest.py leaves this
package out of the collection.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.containers.podman_compose import PodmanCompose

# Every service of the compose file, the runner included: the pipeline runs in it.
SERVICES = (
    "s3",
    "dask-scheduler",
    "dask-worker-1",
    "dask-worker-2",
    "mlflow",
    "prefect",
    "runner",
)
SERVERS = SERVICES[:-1]


def _interrupt(signum, frame):
    # SIGTERM (a CI timeout, `kill`) becomes an interrupt, so the finalizer still
    # removes the containers.
    raise KeyboardInterrupt(f"received signal {signum}")


@pytest.fixture(scope="package")
def running_containers(tmp_path_factory):
    """Every compose service as a container, started once for the package."""
    image, run_id = os.environ["NNPIPE_CONTAINER_IMAGE"], os.environ["NNPIPE_CONTAINER_RUN"]
    previous = signal.signal(signal.SIGTERM, _interrupt)
    compose = None
    try:
        compose = PodmanCompose(tmp_path_factory.mktemp("containers"), image, run_id)
        compose.start(SERVERS)
        # The bucket is made once the store answers; MLflow needs it only when the
        # first artifact arrives, so it starts meanwhile.
        took = compose.wait_healthy(["s3"])
        compose.run_to_completion("s3-bucket")
        took.update(compose.wait_healthy(SERVERS[1:]))
        compose.start(["runner"])  # compose starts it once the others are healthy
        took.update(compose.wait_healthy(["runner"]))
        print("healthy after (s):", {k: round(v, 1) for k, v in took.items()})
        compose.startup_seconds = took
        yield compose
    finally:
        if compose is not None:
            compose.close()
        signal.signal(signal.SIGTERM, previous)
    assert compose.remaining() == [], "containers or volumes left after the tests"


@pytest.fixture
def cluster(running_containers):
    """The containers, every one running: a service a test killed is started again first."""
    running_containers.ensure_running(SERVICES)
    return running_containers
