"""The reused local Prefect server's process (started by :func:`flows.local_server.use`).

``python -m flows.local_server_main DIR IDLE_SECONDS`` forks: the parent returns at
once, the child leaves the command's session (``setsid``) and serves Prefect's API
and UI on a free loopback port with uvicorn, like Prefect's temporary server but
kept. It records itself in ``DIR/server.json`` and exits when no command has held
``DIR/users.lock`` and no request came for ``IDLE_SECONDS`` seconds, or on SIGTERM.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from flows.local_server import (
    ACTIVITY_FILE,
    DATABASE_FILE,
    LOG_FILE,
    STATE_FILE,
    USERS_LOCK,
    ServerState,
    read_state,
    write_state,
)

# Prefect's server services are all on, as in ``prefect server start``, except these,
# which serve what flow commands never use and wake every 5-60 s (or, for triggers,
# on every event a command sends), taking CPU and SQLite's write lock beside them:
# SCHEDULER, LATE_RUNS (deployments' schedules: ``nnpipe serve`` asks for a server of
# its own), PAUSE_EXPIRATIONS (paused runs), FOREMAN (workers' health), REPOSSESSOR
# (concurrency-limit leases), CLEANUP_RECONCILER (workers' cleanup queue), TRIGGERS
# (automations and their actions). What the UI shows of a run stays on: the task run
# recorder (task runs come to the server as events), the event persister (events,
# and the old ones vacuumed hourly), log and event streams, cancellation clean-up.
SERVICES_OFF = (
    "SCHEDULER",
    "LATE_RUNS",
    "PAUSE_EXPIRATIONS",
    "FOREMAN",
    "REPOSSESSOR",
    "CLEANUP_RECONCILER",
    "TRIGGERS",
)


def _daemonize(directory: Path) -> None:
    """Fork; the parent exits, the child runs in a session of its own with its output logged."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    os.chdir(directory)  # keeps no command's working directory busy
    log = os.open(directory / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)


class Activity:
    """The time of the last request (health checks aside), noted by an ASGI wrapper."""

    def __init__(self, app: Any) -> None:
        self.app, self.last = app, time.time()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and not scope["path"].endswith("/health"):
            self.last = time.time()
        await self.app(scope, receive, send)


def watch_idle(server: Any, activity: Activity, directory: Path, limit: float) -> None:
    """Stop ``server`` once no command holds a lease and no request came for ``limit`` s."""
    check = min(5.0, max(0.2, limit / 10))
    with open(directory / USERS_LOCK, "a+") as users:
        while not server.should_exit:
            time.sleep(check)
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                activity.last = time.time()  # a command is using the server
            else:
                if time.time() - activity.last >= limit:
                    # Keep the lock: a command arriving now waits until this process is
                    # gone, then starts a new server.
                    _forget(directory)
                    print(f"idle for {limit:g} s: stopping", flush=True)
                    server.should_exit = True
                    return
                fcntl.flock(users, fcntl.LOCK_UN)
            try:
                os.utime(directory / ACTIVITY_FILE, (activity.last, activity.last))
            except FileNotFoundError:  # the state directory was removed: nobody can find us
                print(f"{directory} is gone: stopping", flush=True)
                server.should_exit = True
                return


def _forget(directory: Path) -> None:
    """Remove the state file if it still names this process."""
    state = read_state(directory)
    if state is not None and state.pid == os.getpid():
        (directory / STATE_FILE).unlink(missing_ok=True)


def serve(directory: Path, limit: float) -> None:
    """Bind a free port, record the state, serve Prefect until idle or SIGTERM."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    os.environ["PREFECT_UI_API_URL"] = url  # the UI asks the API at this URL
    for name in SERVICES_OFF:  # a user's own setting of one of these wins
        os.environ.setdefault(f"PREFECT_SERVER_SERVICES_{name}_ENABLED", "false")
    os.environ.pop("PREFECT_API_URL", None)
    me = psutil.Process()
    # Recorded before the slow part: a command waiting for it sees at once if it dies.
    write_state(directory, ServerState(me.pid, me.create_time(), url, limit, time.time()))
    (directory / ACTIVITY_FILE).touch()
    print(f"serving {url} (pid {me.pid}, idle timeout {limit:g} s)", flush=True)
    import uvicorn
    from prefect.server.api.server import create_app
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

    # A database of its own unless the user configured one for Prefect (environment or
    # profile): see ``DATABASE_FILE``.
    own = {PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{directory / DATABASE_FILE}"}
    with temporary_settings(set_defaults=own):
        activity = Activity(create_app())
        config = uvicorn.Config(
            activity, log_level="error", lifespan="on", timeout_graceful_shutdown=5
        )
        server = uvicorn.Server(config)
        threading.Thread(
            target=watch_idle, args=(server, activity, directory, limit), daemon=True
        ).start()
        try:
            server.run(sockets=[sock])
        finally:
            _forget(directory)
            print("stopped", flush=True)


def main(argv: list[str]) -> int:
    """``local_server_main DIR IDLE_SECONDS``."""
    directory, limit = Path(argv[1]), float(argv[2])
    _daemonize(directory)
    serve(directory, limit)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
