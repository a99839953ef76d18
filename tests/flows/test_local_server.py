"""The reused local Prefect server: one per state directory, visible, stoppable, gone when idle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from flows import local_server
from nnpipe.cli import main
from tests.conftest import seed_server_database

ROOT = Path(__file__).resolve().parents[2]
USE = "from flows import local_server; print(local_server.use(), flush=True)"
# Holds its lease until stdin closes (a command still running).
USE_AND_WAIT = USE + "\nimport sys; sys.stdin.read()"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A state directory of its own; its server stopped afterwards whatever happened."""
    directory = tmp_path / "server"
    seed_server_database(directory)
    monkeypatch.setenv(local_server.HOME_VARIABLE, str(directory))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    yield directory
    local_server.stop()


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PYTHONPATH=str(ROOT), **{local_server.HOME_VARIABLE: str(home)}, **extra)
    return env


def start_user(home: Path, **extra: str) -> subprocess.Popen:
    """A process that uses the server and keeps its lease until its stdin is closed."""
    return subprocess.Popen(
        [sys.executable, "-c", USE_AND_WAIT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env_for(home, **extra),
    )


def database_of(pid: int) -> str:
    """The SQLite database the server process has open (once it has answered a request)."""
    paths = {f.path for f in psutil.Process(pid).open_files() if f.path.endswith(".db")}
    assert len(paths) == 1, paths
    return paths.pop()


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_one_server_for_two_commands_at_once_replaced_when_killed_stopped_on_demand(home, capsys):
    users = [start_user(home), start_user(home)]
    urls = {proc.stdout.readline().strip() for proc in users}
    assert len(urls) == 1, urls
    url = urls.pop()
    assert local_server.healthy(url)
    assert main(["server", "status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["running"] and info["url"] == url and info["in_use"], info
    assert info["home"] == str(home) and Path(info["log"]).is_file()
    assert database_of(info["pid"]) == str(home / local_server.DATABASE_FILE)  # its own
    for proc in users:
        proc.stdin.close()
        assert proc.wait(30) == 0
    assert local_server.healthy(url)  # the commands ended; the server stays for the next

    os.kill(info["pid"], signal.SIGKILL)  # a stale state file: seen, and replaced
    assert gone(info["pid"], 10)
    assert main(["server", "status"]) == 0
    out = capsys.readouterr().out
    assert "not running" in out and f"names pid {info['pid']}, which is gone" in out
    url = local_server.use()
    replaced = local_server.read_state(home)
    assert replaced.pid != info["pid"] and local_server.healthy(url)

    assert main(["server", "stop"]) == 0
    assert f"stopped the local Prefect server (pid {replaced.pid}" in capsys.readouterr().out
    assert gone(replaced.pid, 1) and not local_server.healthy(url)
    assert not (home / local_server.STATE_FILE).exists()
    assert main(["server", "status"]) == 0
    assert "not running" in capsys.readouterr().out


@pytest.mark.slow
def test_the_server_exits_by_itself_once_idle_but_not_while_a_command_uses_it(home, tmp_path):
    # The user's Prefect database, when configured, rather than one of its own.
    database = seed_server_database(tmp_path / "configured")
    configured = {"PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}"}
    user = start_user(home, **{local_server.IDLE_VARIABLE: "1.5"}, **configured)
    url = user.stdout.readline().strip()
    state = local_server.read_state(home)
    assert state.idle_timeout == 1.5
    assert database_of(state.pid) == str(database)
    time.sleep(4)  # longer than the timeout, but the command still holds its lease
    assert local_server.healthy(url)
    user.stdin.close()
    assert user.wait(30) == 0
    assert gone(state.pid, 30), "the idle server did not exit"
    assert not (home / local_server.STATE_FILE).exists()
    assert "idle for 1.5 s: stopping" in (home / local_server.LOG_FILE).read_text()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (local_server.IDLE_VARIABLE, "soon", "NNPIPE_SERVER_IDLE_TIMEOUT='soon': allowed a number"),
        (local_server.IDLE_VARIABLE, "0", "NNPIPE_SERVER_IDLE_TIMEOUT='0': allowed a number"),
        (local_server.MODE_VARIABLE, "shared", "allowed values are reuse, temporary"),
    ],
)
def test_bad_server_settings_fail_the_command_with_one_line(
    variable, value, message, tmp_path, home
):
    env = env_for(home, **{variable: value})
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from nnpipe.cli import main; sys.exit(main())",
            "train",
            "--dataset",
            str(tmp_path / "missing"),
        ],  # fmt: skip
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("nnpipe train: error: ")
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (home / local_server.STATE_FILE).exists()


def test_an_explicit_api_url_or_the_opt_out_skips_the_reused_server(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv(local_server.MODE_VARIABLE, raising=False)
    assert local_server.wanted()
    monkeypatch.setenv(local_server.MODE_VARIABLE, "temporary")
    assert not local_server.wanted()
    monkeypatch.setenv(local_server.MODE_VARIABLE, "reuse")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert not local_server.wanted()


def test_flows_on_the_reused_server_send_no_heartbeats_others_keep_prefects_default(
    monkeypatch,
):
    from prefect.settings import get_current_settings

    from nnpipe import cli_server

    default = get_current_settings().flows.heartbeat_frequency
    assert default is not None  # Prefect's own default (180 s)
    url = "http://127.0.0.1:4999/api"
    monkeypatch.setattr(cli_server, "_local_url", url)
    monkeypatch.setenv("PREFECT_API_URL", url)
    with cli_server.flow_settings():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency == default
    # The user pointed the command at a server of their own: Prefect's defaults stay.
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    with cli_server.flow_settings():
        assert get_current_settings().flows.heartbeat_frequency == default
    monkeypatch.setattr(cli_server, "_local_url", None)
    with cli_server.flow_settings():
        assert get_current_settings().flows.heartbeat_frequency == default


def task_names(url: str, flow_name: str) -> tuple[list[str], set[str]]:
    """The runs of ``flow_name`` on the server at ``url``, and the names of their tasks."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))
        ids = [run.id for run in runs]
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    # A task run is named after its task, with a short suffix: "open_dataset-3f2".
    return [str(i) for i in ids], {task.name.rsplit("-", 1)[0] for task in tasks}


@pytest.mark.slow
def test_a_train_commands_task_runs_are_recorded_on_the_reused_server(home, tmp_path):
    assert main(["make-data", "regression", str(tmp_path / "reg"), "--rows", "400",
                 "--features", "2", "--rows-per-partition", "200"]) == 0  # fmt: skip
    train = ["train", "--dataset", str(tmp_path / "reg"), "--workdir", str(tmp_path / "w")]
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from nnpipe.cli import main; sys.exit(main())"]
        + [*train, "--epochs", "1"],
        env=env_for(home),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    url = local_server.read_state(home).url
    expected = {"open_dataset", "get_scalers", "train", "evaluate"}
    deadline = time.monotonic() + 30  # the server records task runs from events, soon after
    runs, names = task_names(url, "train_bp")
    while not expected <= names and time.monotonic() < deadline:
        time.sleep(0.5)
        runs, names = task_names(url, "train_bp")
    assert len(runs) == 1, runs
    assert expected <= names, names
