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

import numpy as np
import pandas as pd
import pytest

from nnpipe.core.mlp import MLPRegressor
from nnpipe.core.scalers import StandardScaler
from nnpipe.tracking import MlflowTracker


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


def launch_tracking_server(root: Path, empty_store: Path) -> tuple[subprocess.Popen, str, Path]:
    """Start ``mlflow server`` on 127.0.0.1 (free port, own store in ``root``); don't wait."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty_store, root / "mlflow.db")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    # The server's background job runner starts eight worker processes we do not use.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log = root / "server.log"
    args = [mlflow_command(), "server", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    args += ["--artifacts-destination", str(root / "artifacts")]
    return start_process(args, cwd=root, log=log, env=env), f"http://127.0.0.1:{port}", log


def launch_model_server(
    model_uri: str, tracking_uri: str, root: Path, env_manager: str | None = "local"
) -> tuple[subprocess.Popen, str, Path]:
    """Start ``mlflow models serve`` for ``model_uri``; don't wait.

    ``env_manager=None`` leaves MLflow its default (virtualenv): it builds an
    environment from the model's own requirements, without nnpipe installed, under
    ``~/.mlflow/envs`` (reused while the requirements stay the same).
    """
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "OMP_NUM_THREADS": "1"}
    log = root / "serve.log"
    args = [mlflow_command(), "models", "serve", "-m", model_uri]
    if env_manager is not None:
        args += ["--env-manager", env_manager]
    else:  # nothing of this environment may leak into the one MLflow builds
        env.pop("PYTHONPATH", None)
    args += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return start_process(args, cwd=root, log=log, env=env), f"http://127.0.0.1:{port}", log


# -- a real regressor logged as a pyfunc model (shared by test_model and test_services) --
FEATURES = ["temperature", "pressure", "humidity"]


@pytest.fixture(scope="module")
def model_store(tmp_path_factory, empty_store_file):
    """One store per module (logging a model costs seconds); env and cwd point at it."""
    root = tmp_path_factory.mktemp("model-store")
    shutil.copyfile(empty_store_file, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.chdir(root)
        yield root, uri


def regression_data(n: int = 240):
    rng = np.random.default_rng(0)
    X = rng.normal([20.0, 1000.0, 0.5], [5.0, 30.0, 0.2], size=(n, 3))  # (n, 3)
    # Negative targets: the pyfunc must return them in original units.
    y = -40.0 + 0.8 * (X[:, 0] - 20.0) - 0.05 * (X[:, 1] - 1000.0) + 3.0 * X[:, 2]
    return X, y


@pytest.fixture(scope="module")
def regressor_files(tmp_path_factory):
    X, y = regression_data()
    scaler = StandardScaler().fit(X)
    net = MLPRegressor(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    net.fit(scaler.transform(X), y)
    root = tmp_path_factory.mktemp("regressor")
    net.save(root / "network.npz")
    scaler.save(root / "scaler.npz")
    return root / "network.npz", root / "scaler.npz", X, net, scaler


@pytest.fixture(scope="module")
def logged_regressor(model_store, regressor_files):
    network_path, scaler_path, X, _, _ = regressor_files
    tracker = MlflowTracker("nnpipe-train", registered_model_name="nnpipe-regressor")
    with tracker.run("train") as run_id:
        logged = tracker.log_model(
            network_path,
            scaler_path=scaler_path,
            input_example=pd.DataFrame(X[:3], columns=FEATURES),
            feature_names=FEATURES,
        )
        # Registration waits for the run to succeed.
        assert tracker.client.search_model_versions("name='nnpipe-regressor'") == []
    return tracker, run_id, logged
