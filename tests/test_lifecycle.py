"""What an ``nnpipe`` command's own process sets up and skips on its way in and out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnpipe import lifecycle

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("given", "expected"), [(None, "true"), ("false", "false")])
def test_mlflow_telemetry_is_off_unless_the_user_chose(monkeypatch, given, expected):
    if given is None:
        monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", given)
    lifecycle.quiet_telemetry()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == expected


def test_a_command_without_collection_at_exit_still_flushes_files_and_runs_atexit(tmp_path):
    # What the command's process still does at exit once the collector is off:
    # atexit handlers run, open files are flushed and closed, the exit code stands.
    script = f"""
import atexit, sys
from nnpipe import lifecycle
out = open({str(tmp_path / "out.txt")!r}, "w")
out.write("written, never flushed by hand")
atexit.register(lambda: open({str(tmp_path / "atexit.txt")!r}, "w").write("ran"))
cycle = []; cycle.append(cycle)  # garbage in a reference cycle, left to the OS
lifecycle.skip_collection_at_exit()
sys.exit(3)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert (tmp_path / "out.txt").read_text() == "written, never flushed by hand"
    assert (tmp_path / "atexit.txt").read_text() == "ran"


def test_the_reaper_holds_neither_output_stream_of_the_command():
    # A reader of the command's output (`2>&1 | tee`, a script capturing both) sees
    # end of file when the command exits, not when its reaper does.
    script = (
        "import sys; from nnpipe import lifecycle; print(lifecycle.start_reaper().pid, flush=True);"
        "sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        reaper = int(proc.stdout.readline())
        streams = {os.readlink(f"/proc/{reaper}/fd/{fd}") for fd in (1, 2)}
        assert streams == {"/dev/null"}
    finally:
        proc.communicate("", timeout=60)
