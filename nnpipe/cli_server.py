"""``nnpipe server status|stop``: the local Prefect server that flow commands reuse."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from typing import Any

# Flow commands that use the reused server (``serve`` needs a scheduling server of its own).
REUSING_COMMANDS = {"prepare", "train", "recall", "pipeline", "sweep", "demo"}

SERVER_HELP = (
    "Without PREFECT_API_URL, flow commands start a local Prefect server on first use and "
    "reuse it (it exits after NNPIPE_SERVER_IDLE_TIMEOUT seconds unused, default 1800; its "
    "state lives in NNPIPE_SERVER_HOME, default $PREFECT_HOME/nnpipe-server). "
    "NNPIPE_PREFECT_SERVER=temporary gives each command Prefect's temporary server instead."
)


def add_server_command(sub: Any) -> None:
    """The ``server`` sub-command with its ``status`` and ``stop`` actions."""
    p = sub.add_parser(
        "server",
        help="show or stop the local Prefect server that flow commands reuse",
        description=SERVER_HELP,
    )
    p.add_argument("action", choices=["status", "stop"])
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=_cmd_server)


_local_url: str | None = None


def use_local_server(command: str) -> str | None:
    """Point this process at the reused local server when the command wants one; its URL."""
    global _local_url
    from flows import local_server

    if command not in REUSING_COMMANDS or not local_server.wanted():
        return None
    _local_url = local_server.use()
    os.environ["PREFECT_API_URL"] = _local_url
    return _local_url


def flow_settings() -> contextlib.AbstractContextManager[Any]:
    """The Prefect settings a command's flow runs under: no heartbeats on the local server.

    Heartbeats serve a zombie-detection automation on a server someone set one up on;
    the reused local server has none, and ending the heartbeat thread (which sleeps
    in 1 s steps) added up to 1 s to every command. On any other server (PREFECT_API_URL
    set by the user) Prefect's defaults stay.
    """
    if _local_url is None or os.environ.get("PREFECT_API_URL") != _local_url:
        return contextlib.nullcontext()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def _cmd_server(args: argparse.Namespace) -> int:
    from flows import local_server

    if args.action == "stop":
        state = local_server.stop()
        if state is None:
            print(f"no local Prefect server running (state in {local_server.home()})")
        else:
            print(f"stopped the local Prefect server (pid {state.pid}, {state.url})")
        return 0
    info = local_server.status()
    if args.json:
        print(json.dumps(info, indent=2), file=args.json_stdout)
    else:
        print(_describe(info))
    return 0


def _describe(info: dict[str, Any]) -> str:
    if not info["running"]:
        lines = ["local Prefect server: not running"]
        if "stale" in info:
            lines.append(f"  stale state: {info['stale']} (replaced on next use)")
    else:
        answering = "answering" if info["answering"] else "NOT answering"
        use = "in use by a command" if info["in_use"] else f"idle {info['idle_seconds']:g} s"
        lines = [
            f"local Prefect server: running, {answering}",
            f"  pid      {info['pid']}",
            f"  url      {info['url']}  (UI {info['ui']})",
            f"  idle     {use}; exits after {info['idle_timeout']:g} s idle",
            f"  uptime   {info['uptime_seconds']:g} s",
            f"  log      {info['log']}",
        ]
    lines.append(f"  state in {info['home']}")
    return "\n".join(lines)
