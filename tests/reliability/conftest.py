"""Shared pieces of the reliability matrix: tiny datasets, the command as a process, a store.

Datasets are written once per session and copied when a case damages one. Cases
about how the command ends (signals, services, exit codes) run ``nnpipe`` as its
own process; the shared Prefect test server keeps each run's start short, and a
case that needs the command's own temporary Prefect server says so.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from flows.datasets import write_dataset
from nnpipe.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-c", "import sys; from nnpipe.cli import main; sys.exit(main())"]


@pytest.fixture(scope="session")
def datasets(tmp_path_factory) -> Path:
    """regression (800 rows, 4 files), classification and hopfield sets, never modified."""
    root = tmp_path_factory.mktemp("reliability-data")
    write_dataset(
        "regression", root / "regression", n_rows=800, n_features=3, rows_per_partition=200
    )
    write_dataset(
        "classification", root / "classification", n_rows=600, n_features=3, rows_per_partition=200
    )
    write_dataset(
        "hopfield", root / "hopfield", n_rows=200, n_neurons=32, n_patterns=3, rows_per_partition=50
    )
    for path in root.rglob("*"):
        path.chmod(path.stat().st_mode & ~0o222)  # a case that writes here fails loudly
    return root


def copy_of(datasets: Path, name: str, dest: Path) -> Path:
    """A writable copy of the session dataset ``name`` under ``dest``."""
    target = dest / name
    shutil.copytree(datasets / name, target, copy_function=shutil.copyfile)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return target


@pytest.fixture(scope="session")
def mlflow_db(tmp_path_factory) -> Path:
    """One MLflow store for the matrix (created once: a new SQLite store takes seconds)."""
    return tmp_path_factory.mktemp("reliability-mlflow") / "mlflow.db"


@pytest.fixture
def env(tmp_path, prefect_url, mlflow_db) -> dict[str, str]:
    """The command's environment: this tree first, the matrix's MLflow store, shared Prefect."""
    values = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    values.update(
        PYTHONPATH=str(ROOT),
        MLFLOW_TRACKING_URI=f"sqlite:///{mlflow_db}",
        PREFECT_API_URL=prefect_url,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return values


def nnpipe(*args, env, cwd, timeout=240) -> subprocess.CompletedProcess:
    """Run ``nnpipe ARGS`` to its end; stdout and stderr as text."""
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(*args, env, cwd) -> subprocess.Popen:
    """Start ``nnpipe ARGS`` without waiting (its output in cwd/out.txt and cwd/err.txt)."""
    return subprocess.Popen(
        [*COMMAND, *map(str, args)],
        env=env,
        cwd=cwd,
        stdout=open(Path(cwd) / "out.txt", "w"),
        stderr=open(Path(cwd) / "err.txt", "w"),
    )


def wait_for_epochs(workdir: Path, proc: subprocess.Popen, n: int, timeout=180.0) -> Path:
    """The checkpoint dir once its state records ``n`` epochs (fails if the run ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for state in workdir.glob("checkpoints/*/training_state.json"):
            try:
                if json.loads(state.read_text())["epochs_done"] >= n:
                    return state.parent
            except (OSError, ValueError, KeyError):
                pass
        assert proc.poll() is None, f"the run ended ({proc.returncode}) before epoch {n}"
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of epoch {n} within {timeout} s")


def one_line(stderr: str) -> str:
    """The command's last stderr line, after asserting no traceback was printed."""
    assert "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


def run_main(args: list) -> tuple[int, str, str]:
    """``nnpipe ARGS`` in this process (the console script's ``main``): code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def keep_env():
    """The environment as it was before the test (the command sets defaults in it)."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


@pytest.fixture
def in_process(tmp_path, prefect_harness, mlflow_db, monkeypatch, keep_env):
    """For commands run in this process: the matrix's MLflow store, cwd in tmp_path."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_db}")
    monkeypatch.chdir(tmp_path)


def own_prefect_server(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a command that starts its own temporary Prefect server (with the user's
    Prefect home, which is already set up): the reaper must end that one."""
    values = {k: v for k, v in env.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    return {**values, "NNPIPE_PREFECT_SERVER": "temporary"}


def alive(procs):
    """The processes of ``procs`` (psutil.Process) still running (pids not reused)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def sigkill_leaves_nothing(proc: subprocess.Popen, within: float = 10.0) -> list[str]:
    """SIGKILL ``proc``; assert every process it had started is gone ``within`` seconds.

    Returns the command lines of what it had started (the caller may check them).
    """
    started = psutil.Process(proc.pid).children(recursive=True)
    commands = [" ".join(p.cmdline()) for p in alive(started)]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + within
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(started), [p.cmdline() for p in alive(started)]
    return commands
