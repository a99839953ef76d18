"""The MLflow helper process an ``nnpipe`` command routes its tracking calls through."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from nnpipe.tracking import MlflowTracker, _remote


@pytest.fixture
def helper():
    started = _remote.Helper()
    yield started
    with contextlib.suppress(OSError):  # a helper the test killed
        started._out.close()
    started._proc.wait(timeout=30)


def test_calls_run_in_the_helper_with_their_results_and_errors(helper, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = helper.experiment_id(uri, "remote", None)
    run_id = helper.create_run(uri, experiment, "r", {"k": "v"})
    # Keyword arguments named like the call's own parameters pass through.
    columns = [("x", "double")]
    helper.log_dataset(
        uri, run_id, name="d", digest="abc", source="/d", columns=columns, n_rows=3, context="t"
    )
    helper.log_batch(uri, run_id, [("loss", 0.5, 0, 1)], [("p", "1")])
    with helper.system_metrics(uri, run_id, 1.0):
        time.sleep(0.2)
    helper.set_terminated(uri, run_id, "FINISHED")
    run = MlflowClient(uri).get_run(run_id)  # read back in this process
    assert (run.info.status, run.data.tags["k"], run.data.params["p"]) == ("FINISHED", "v", "1")
    assert run.data.metrics["loss"] == 0.5
    assert run.inputs.dataset_inputs[0].dataset.digest == "abc"
    assert any(k.startswith("system/") for k in run.data.metrics)
    assert helper.run_status(uri, "0" * 32) is None
    with pytest.raises(MlflowException, match="not found|does not exist|No run"):
        helper.log_text(uri, "0" * 32, "x", "a.txt")
    assert helper._proc.pid != os.getpid()


def test_a_tracker_run_through_the_helper_ends_killed_on_ctrl_c(helper, tmp_path, monkeypatch):
    monkeypatch.setattr(_remote, "_helper", helper)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker("remote", tracking_uri=uri)
    # A Ctrl-C on the terminal reaches the command's process group, not the helper's;
    # and a SIGINT sent to the helper itself is ignored: it lives on to store the end.
    assert os.getpgid(helper._proc.pid) != os.getpgid(0)
    assert tracker.experiment_id  # the helper is up and serving
    os.kill(helper._proc.pid, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), tracker.run(run_name="r") as run_id:
        tracker.log_metrics({"loss": 1.0})
        raise KeyboardInterrupt
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "KILLED" and run.data.metrics["loss"] == 1.0


def test_a_dead_helper_fails_the_next_call_with_what_happened(helper, tmp_path):
    helper._proc.kill()
    helper._proc.wait(timeout=30)
    with pytest.raises(_remote.HelperFailed, match=r"helper process ended \(exit code -9\)"):
        helper.create_run(f"sqlite:///{tmp_path / 'mlflow.db'}", "0", None, {})


def test_the_helper_exits_once_the_command_is_gone(tmp_path):
    started = _remote.Helper()
    started._out.close()  # what the command's exit (or death) does to the pipe
    assert started._proc.wait(timeout=60) == 0


def test_a_tracking_command_starts_the_helper_before_its_arguments_are_parsed(monkeypatch):
    from nnpipe import cli

    monkeypatch.setattr(_remote, "_helper", None)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "")  # restored afterwards, whatever it was
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")
    cli._start_tracking(["--debug", "server", "status"])  # no tracking: no helper
    cli._start_tracking(["--help"])
    assert _remote._helper is None
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    cli._start_tracking(["--debug", "train", "--dataset", "data", "--epochs", "1"])
    started = _remote._helper
    try:
        assert started is not None and started._proc.poll() is None
        assert _remote.store() is started
    finally:
        started._out.close()
        assert started._proc.wait(timeout=60) == 0
