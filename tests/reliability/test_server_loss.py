"""The MLflow server goes away mid-run: the run fails cleanly, its checkpoints kept.

The chosen behaviour (README, "Unattended runs"): each MLflow request is bounded
by ``--service-timeout``; when the server stops answering, the command exits 1
with one line and the checkpoints stay. Once the server is back the same command
resumes, and the run left RUNNING is ended KILLED.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mlflow import MlflowClient

from .conftest import one_line, run_main, start, wait_for_epochs
from .test_resume import train_args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_server(root: Path, port: int) -> subprocess.Popen:
    """``mlflow server`` on 127.0.0.1:port (own process group), once it answers /health."""
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [
            str(mlflow),
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
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=open(root / "server.log", "a"),
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            assert proc.poll() is None, (root / "server.log").read_text()[-2000:]
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("mlflow server did not start")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_mlflow_server_lost_mid_run_fails_cleanly_then_resumes(
    datasets, tmp_path, env, in_process, monkeypatch
):
    root, port = tmp_path / "mlflow", free_port()
    root.mkdir()
    uri = f"http://127.0.0.1:{port}"
    server = mlflow_server(root, port)
    try:
        work = tmp_path / "work"
        args = train_args(datasets, work, tmp_path)
        env = {**env, "MLFLOW_TRACKING_URI": uri}
        proc = start(*args, "--service-timeout", "3", env=env, cwd=tmp_path)
        checkpoints = wait_for_epochs(work, proc, 2)
        stop(server)
        assert proc.wait(timeout=120) == 1
        err = (tmp_path / "err.txt").read_text()
        line = one_line(err)
        assert line.startswith("nnpipe train: failed:") and f"127.0.0.1:{port}" in line, err
        state = json.loads((checkpoints / "training_state.json").read_text())
        assert state["epochs_done"] >= 2
        killed_run = json.loads((checkpoints / "run.json").read_text())["run_id"]

        server = mlflow_server(root, port)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        code, out, err = run_main(args)
        assert code == 0, err
        result = json.loads(out)
        assert result["summary"]["resumed_from"] >= state["epochs_done"]
        old = MlflowClient(uri).get_run(killed_run)
        assert old.info.status == "KILLED"
        assert old.data.tags["nnpipe.continued_by"] == result["run_ids"]["train_bp"]
    finally:
        stop(server)
