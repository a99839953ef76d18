"""Ends the processes an ``nnpipe`` command started once the command itself is gone.

Run as a script by :func:`nnpipe.lifecycle.start_reaper`, in its own session (a
Ctrl-C on the terminal does not reach it), with the command's end of a pipe as
stdin. Every second it notes the command's descendants (pid and start time); when
the pipe reaches end of file, the command has exited or was killed (even by
SIGKILL, which no handler sees), and the reaper terminates the descendants still
alive that it noted, and theirs: Prefect's temporary server (a uvicorn child),
local Dask workers started as processes, anything else spawned for the run.
Processes that left the command's session on purpose (the reused local Prefect
server, ``flows/local_server_main.py``, which outlives commands) are left alone.
"""

from __future__ import annotations

import os
import select
import sys

import psutil

SCAN_SECONDS = 1.0  # how often the command's descendants are noted
GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL of what is left


def watch(parent_pid: int, pipe_fd: int) -> dict[int, float]:
    """Note ``parent_pid``'s descendants until ``pipe_fd`` closes; return {pid: start time}.

    Only descendants in the command's own session are noted: a process started in a
    session of its own (``setsid``) was started to outlive the command.
    """
    me = os.getpid()
    known: dict[int, float] = {}
    try:
        parent = psutil.Process(parent_pid)
        session = os.getsid(parent_pid)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return known
    while True:
        try:
            for child in parent.children(recursive=True):
                if child.pid != me and _session(child.pid) == session:
                    known[child.pid] = child.create_time()
        except psutil.NoSuchProcess:
            return known
        except psutil.Error:
            pass  # a child vanished while being looked at: the next scan sees the rest
        ready, _, _ = select.select([pipe_fd], [], [], SCAN_SECONDS)
        if ready and not os.read(pipe_fd, 4096):
            return known


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def end_all(known: dict[int, float]) -> list[int]:
    """Terminate (then kill) the noted processes still alive and their descendants."""
    procs: dict[int, psutil.Process] = {}
    for pid, created in known.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() != created:
                continue  # the pid was reused by an unrelated process
            session = _session(pid)
            procs[pid] = proc
            procs.update(
                {c.pid: c for c in proc.children(recursive=True) if _session(c.pid) == session}
            )
        except psutil.Error:
            continue
    for proc in procs.values():
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(procs.values()), timeout=GRACE_SECONDS)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    return sorted(procs)


def main(argv: list[str]) -> int:
    """``reaper.py PARENT_PID``, the parent's pipe on stdin."""
    end_all(watch(int(argv[1]), sys.stdin.fileno()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
