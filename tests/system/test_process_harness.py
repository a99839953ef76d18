"""The harness that runs compose services locally leaves nothing running, even on failure."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.system.compose import ROOT, load_compose
from tests.system.processes import LocalCompose, ServiceFailed

pytestmark = [pytest.mark.service, pytest.mark.slow]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return True
        time.sleep(0.2)
    return False


def test_a_service_that_exits_fails_fast_with_its_log(tmp_path):
    compose = copy.deepcopy(load_compose())
    command = compose["services"]["dask-scheduler"]["command"]
    command[command.index("--port") + 1] = "not-a-port"
    with LocalCompose(tmp_path, compose=compose) as local:
        local.start(["dask-scheduler"])
        started = time.monotonic()
        with pytest.raises(ServiceFailed, match="dask-scheduler exited") as info:
            local.wait_healthy(["dask-scheduler"], timeout=90)
        assert time.monotonic() - started < 60
        assert "not-a-port" in str(info.value)  # the log's tail names the cause


def test_services_die_with_a_test_process_killed_by_sigkill(tmp_path):
    # A stand-in for a pytest process killed by a CI timeout: no finalizer runs.
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from tests.system.processes import LocalCompose
        local = LocalCompose(Path({str(tmp_path)!r}))
        local.start(["dask-scheduler"])
        local.wait_healthy(["dask-scheduler"], timeout=90)
        print(local.processes["dask-scheduler"].pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        scheduler_group = int(parent.stdout.readline())
        assert group_alive(scheduler_group)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_gone(scheduler_group, timeout=20), "the scheduler outlived its test process"
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
