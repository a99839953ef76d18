"""Shared fixtures: one Prefect test server per session, MLflow kept in temporary dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before Prefect is imported anywhere: analytics off (and its SQLite lock noise).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

# tests/containers runs the image under podman; `make container-test` builds the
# image and names it here. `make test` leaves it to that target.
collect_ignore = [] if os.environ.get("NNPIPE_CONTAINER_IMAGE") else ["containers"]


@pytest.fixture(scope="session", autouse=True)
def _mlflow_outside_the_repo(tmp_path_factory):
    """Point the default MLflow store at a temporary SQLite file for the whole session.

    Code that falls back to ``MLFLOW_TRACKING_URI`` (or to ``<cwd>/mlflow.db``) never
    writes into the repository. Tests wanting their own store override it.
    """
    root = tmp_path_factory.mktemp("mlflow-session")
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        yield root


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server (its own SQLite database) shared by the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def prefect_url(prefect_harness) -> str:
    """The session's Prefect test server, for commands run as processes."""
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> Path:
    """A directory holding one SQLite MLflow store (mlflow.db) and its artifacts."""
    return tmp_path_factory.mktemp("mlflow-store")


@pytest.fixture
def mlflow_uri(mlflow_store, monkeypatch) -> str:
    """``MLFLOW_TRACKING_URI`` set to the session store; cwd moved beside it."""
    uri = f"sqlite:///{mlflow_store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(mlflow_store)
    return uri
