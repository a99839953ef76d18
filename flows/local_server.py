"""The local Prefect server: started on first use, reused by later commands, gone when idle.

Without ``PREFECT_API_URL``, Prefect would start a temporary server for every
command (about 9 s of a 15 s training run here). Instead the first flow command
starts one detached server process (``flows/local_server_main.py``, in its own
session, so the reaper of a killed command leaves it alone) and later commands
find it through its state file and use it. It exits by itself after
``NNPIPE_SERVER_IDLE_TIMEOUT`` seconds (default 1800) with no command using it and
no request; ``nnpipe server status`` shows it, ``nnpipe server stop`` ends it.

Files, in ``NNPIPE_SERVER_HOME`` (default ``$PREFECT_HOME/nnpipe-server``, that is
``~/.prefect/nnpipe-server``):

- ``server.json``: pid, process start time, URL, idle timeout of the running server;
- ``start.lock``: held while a command checks or starts the server, so two commands
  starting at once start one server;
- ``users.lock``: every command using the server holds it shared; the server only
  counts itself idle when it can take it exclusively;
- ``activity``: its modification time is the last request the server answered;
- ``server.log``: the server's own output;
- ``prefect.db``: its database (flow runs, task runs, logs, artifacts), unless
  Prefect's database is configured (``PREFECT_API_DATABASE_CONNECTION_URL`` in the
  environment or the Prefect profile), which it then uses.

``NNPIPE_PREFECT_SERVER=temporary`` opts out (Prefect's temporary server per
command, as before); an explicit ``PREFECT_API_URL`` always wins.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import psutil

MODE_VARIABLE = "NNPIPE_PREFECT_SERVER"
MODES = ("reuse", "temporary")
HOME_VARIABLE = "NNPIPE_SERVER_HOME"
IDLE_VARIABLE = "NNPIPE_SERVER_IDLE_TIMEOUT"
DEFAULT_IDLE_TIMEOUT = 1800.0
STATE_FILE, LOG_FILE, ACTIVITY_FILE = "server.json", "server.log", "activity"
# The server's own SQLite database (unless the user configured Prefect's database).
# Not Prefect's shared $PREFECT_HOME/prefect.db: there, any other Prefect process
# writing at the same time (a temporary server, `prefect server start`, another
# user's tests) holds SQLite's one write lock, and the reused server's writes then
# wait for it, up to PREFECT_API_DATABASE_TIMEOUT (10 s) each.
DATABASE_FILE = "prefect.db"
START_LOCK, USERS_LOCK = "start.lock", "users.lock"
MAIN_MODULE = "flows.local_server_main"

_leases: dict[Path, IO[Any]] = {}  # this process's shared holds on users.lock, by directory


@dataclass
class ServerState:
    """What ``server.json`` records of the running server."""

    pid: int
    create_time: float
    url: str  # the API URL: http://127.0.0.1:PORT/api
    idle_timeout: float
    started: float  # time.time() when it started


def home() -> Path:
    """Where the server's state lives (``NNPIPE_SERVER_HOME``, else beside Prefect's home)."""
    configured = os.environ.get(HOME_VARIABLE)
    if configured:
        return Path(configured).expanduser().absolute()
    prefect_home = os.environ.get("PREFECT_HOME") or "~/.prefect"
    return Path(prefect_home).expanduser().absolute() / "nnpipe-server"


def idle_timeout() -> float:
    """``NNPIPE_SERVER_IDLE_TIMEOUT`` in seconds (default 1800), checked."""
    text = os.environ.get(IDLE_VARIABLE, "")
    if not text:
        return DEFAULT_IDLE_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{IDLE_VARIABLE}={text!r}: allowed a number of seconds > 0")
    return value


def wanted() -> bool:
    """Whether this command should use the reused local server (no PREFECT_API_URL, no opt-out)."""
    mode = os.environ.get(MODE_VARIABLE, "") or "reuse"
    if mode not in MODES:
        raise ValueError(f"{MODE_VARIABLE}={mode!r}: allowed values are {', '.join(MODES)}")
    return mode == "reuse" and not os.environ.get("PREFECT_API_URL")


def read_state(directory: Path) -> ServerState | None:
    """The recorded server, or None (no file, or one that cannot be read)."""
    try:
        return ServerState(**json.loads((directory / STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_state(directory: Path, state: ServerState) -> None:
    """Record ``state`` atomically (a reader never sees half a file)."""
    tmp = directory / f".{STATE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(asdict(state)))
    tmp.replace(directory / STATE_FILE)


def process_of(state: ServerState) -> psutil.Process | None:
    """The server's process if it still runs (the same process, not a reused pid)."""
    try:
        proc = psutil.Process(state.pid)
        if abs(proc.create_time() - state.create_time) < 0.01 and proc.is_running():
            return proc if proc.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        pass
    return None


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether the Prefect API at ``url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as reply:
            return reply.status == 200
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _locked(path: Path, mode: int):
    with open(path, "a+") as handle:
        fcntl.flock(handle, mode)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def use(timeout: float = 180.0) -> str:
    """The reused server's API URL, started now if none runs; this process holds a lease on it.

    The lease (a shared lock on ``users.lock``, kept until the process exits)
    keeps the server from counting itself idle while the command runs.
    """
    directory = home()
    limit = idle_timeout()
    directory.mkdir(parents=True, exist_ok=True)
    if directory not in _leases:
        lease = open(directory / USERS_LOCK, "a+")  # noqa: SIM115 (held until exit)
        # Blocks only while a server shuts down for idleness: it then starts anew below.
        fcntl.flock(lease, fcntl.LOCK_SH)
        _leases[directory] = lease
    with _locked(directory / START_LOCK, fcntl.LOCK_EX):
        state = read_state(directory)
        if state is not None and process_of(state) is not None:
            # Running, or still starting (its starter was killed): wait for it.
            url = _answering(directory, timeout, started=True)
            if url is not None:
                return url
        state = read_state(directory)
        if state is not None:  # killed, or hung: replaced
            _end(state)
            (directory / STATE_FILE).unlink(missing_ok=True)
        return _start(directory, limit, timeout)


def _start(directory: Path, limit: float, timeout: float) -> str:
    """Start the detached server and wait until it answers; its URL."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    # Its own process group and session (it daemonizes): Ctrl-C on the terminal and
    # the reaper of this command both leave it alone.
    launcher = subprocess.run(
        [sys.executable, "-m", MAIN_MODULE, str(directory), str(limit)],
        env={**env, "PYTHONPATH": _import_path(env)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        check=False,
    )
    if launcher.returncode != 0:
        raise RuntimeError(f"the local Prefect server could not start (see {directory / LOG_FILE})")
    url = _answering(directory, timeout)
    if url is not None:
        return url
    state = read_state(directory)
    if state is not None:
        _end(state)
    raise RuntimeError(
        f"the local Prefect server stopped or did not answer within {timeout:g} s "
        f"(its log ends: {_last_line(directory)!r}); "
        f"see {directory / LOG_FILE}, or set {MODE_VARIABLE}=temporary"
    )


def _last_line(directory: Path) -> str:
    try:
        lines = (directory / LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return lines[-1] if lines else ""


def _answering(directory: Path, timeout: float, started: bool = False) -> str | None:
    """The recorded server's URL once it answers; None if it dies or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(directory)
        if state is None and started:
            return None  # it started and stopped again
        if state is not None:
            started = True
            if process_of(state) is None:
                return None
            if healthy(state.url):
                return state.url
        time.sleep(0.1)
    return None


def _import_path(env: dict[str, str]) -> str:
    """PYTHONPATH for the server: this tree first (the same flows package as the command)."""
    root = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)


def _end(state: ServerState, grace: float = 10.0) -> bool:
    """Terminate the recorded server (then kill it after ``grace`` s); whether it was running."""
    proc = process_of(state)
    if proc is None:
        return False
    with contextlib.suppress(psutil.Error):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
    return True


def stop() -> ServerState | None:
    """Stop the reused server; the state it had (None: none was running)."""
    directory = home()
    if not directory.is_dir():
        return None
    with _locked(directory / START_LOCK, fcntl.LOCK_EX):
        state = read_state(directory)
        running = state is not None and _end(state)
        (directory / STATE_FILE).unlink(missing_ok=True)
    return state if running else None


def status() -> dict[str, Any]:
    """The server's state for ``nnpipe server status`` (``running`` False when none runs)."""
    directory = home()
    state = read_state(directory)
    info: dict[str, Any] = {"running": False, "home": str(directory)}
    if state is None:
        return info
    if process_of(state) is None:
        info["stale"] = f"{directory / STATE_FILE} names pid {state.pid}, which is gone"
        return info
    try:
        last = (directory / ACTIVITY_FILE).stat().st_mtime
    except OSError:
        last = state.started
    info.update(
        running=True,
        pid=state.pid,
        url=state.url,
        ui=state.url.removesuffix("/api"),
        answering=healthy(state.url),
        in_use=_in_use(directory),
        idle_seconds=round(max(0.0, time.time() - last), 1),
        idle_timeout=state.idle_timeout,
        uptime_seconds=round(time.time() - state.started, 1),
        log=str(directory / LOG_FILE),
    )
    return info


def _in_use(directory: Path) -> bool:
    """Whether some command holds a lease (the exclusive lock cannot be had at once)."""
    with open(directory / USERS_LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
