"""Shared fixtures: one Prefect test server per session, MLflow kept in temporary dirs."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session", autouse=True)
def _local_server_home(tmp_path_factory):
    """Commands run by the tests keep their reused Prefect server in a session directory.

    A user's own server (``~/.prefect/nnpipe-server``) is never touched. Tests that
    start the server stop it; at the end of the session none may be left running.
    """
    from flows import local_server

    home = tmp_path_factory.mktemp("nnpipe-server")
    seed_server_database(home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(local_server.HOME_VARIABLE, str(home))
        mp.delenv(local_server.MODE_VARIABLE, raising=False)
        yield home
    left = local_servers_running(tmp_path_factory.getbasetemp())  # any test's state dir
    for proc in left:
        proc.kill()
    assert not left, f"tests left the local Prefect server running: {left}"


def seed_server_database(home: Path) -> Path:
    """Give the reused server's state directory an already migrated, empty database.

    A server finding none migrates a new one (about 5 s here), as a user's first
    command does once; the tests start several servers.
    """
    from flows import local_server
    from tests.system.processes import migrated_prefect_db

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    home.mkdir(parents=True, exist_ok=True)
    database = home / local_server.DATABASE_FILE
    shutil.copyfile(migrated_prefect_db(env), database)
    return database


def local_servers_running(root: Path) -> list:
    """Server processes (flows/local_server_main.py) with their state directory under ``root``."""
    import psutil

    from flows.local_server import MAIN_MODULE

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if MAIN_MODULE in cmdline and any(arg.startswith(str(root)) for arg in cmdline):
            found.append(proc)
    return found


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


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's standalone S3 server on 127.0.0.1 (a real HTTP server), with credentials checked.

    ``INITIAL_NO_AUTH_ACTION_COUNT`` lets the first three requests create an IAM user
    with its access key; every later request must be signed with that key, so
    wrong credentials are refused as a real store refuses them.
    """
    from tests.s3_server import start_s3_server

    server = start_s3_server(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The AWS_* variables set for ``s3_server`` and a fresh bucket; yields its name."""
    import s3fs

    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()  # instances keep the credentials they began with
    bucket = s3_server.new_bucket()
    yield bucket
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def nnpipe(capsys):
    """Run ``nnpipe ARGS`` in this process; return (exit code, stdout, stderr).

    Shared by the CLI tests on local paths and on ``s3://``.
    """

    from nnpipe.cli import main

    def run(*args: str):
        before = dict(os.environ)
        try:
            code = main([str(a) for a in args])
        finally:
            # The command sets quiet-logging defaults in the environment; undo them.
            os.environ.clear()
            os.environ.update(before)
        out, err = capsys.readouterr()
        return code, out, err

    return run
