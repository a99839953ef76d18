"""MLflow stores for the tracking tests: real SQLite stores in temporary directories.

Creating an MLflow SQLite schema takes seconds, so one empty store is built per
session and copied into each test's directory (a plain file copy).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def empty_store_file(tmp_path_factory) -> Path:
    """An SQLite file holding MLflow's schema and nothing else."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, empty_store_file, monkeypatch) -> str:
    """``sqlite:///<tmp>/mlflow.db`` set as MLFLOW_TRACKING_URI, cwd moved to ``<tmp>``."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(empty_store_file, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return uri


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    """Poll ``url`` until it answers 200; fail with the process log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a process group we started: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    pgid = os.getpgid(proc.pid)
    os.killpg(pgid, 15)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, 9)
        proc.wait(timeout=15)


def start_process(args: list[str], cwd: Path, log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start ``args`` in its own process group (so stop() takes its workers too)."""
    # MLflow launches helpers (uvicorn) by name: this environment's bin comes first.
    bin_dir = str(Path(sys.executable).parent)
    env = {**env, "PATH": os.pathsep.join([bin_dir, env.get("PATH", "")])}
    with open(log, "wb") as out:
        return subprocess.Popen(
            args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def mlflow_command() -> str:
    """The ``mlflow`` executable of this interpreter's environment."""
    return str(Path(sys.executable).with_name("mlflow"))


@pytest.fixture
def mlflow_server(tmp_path, empty_store_file):
    """An ``mlflow server`` on 127.0.0.1 (free port, own store); yields its URL; always stopped."""
    root = tmp_path / "server"
    root.mkdir()
    shutil.copyfile(empty_store_file, root / "mlflow.db")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    # The server's background job runner starts eight worker processes we do not use.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log = root / "server.log"
    proc = start_process(
        [
            mlflow_command(),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        cwd=root,
        log=log,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", proc, timeout=90, log=log)
        yield url
    finally:
        stop(proc)
