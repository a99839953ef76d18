"""The tracking writer process: order, errors, durability when the caller dies or is interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient

from nnpipe.tracking import MlflowTracker, TrackingError, loss_curve_figure, render_png
from nnpipe.tracking.tracker import ERROR_TAG, absolute_tracking_uri
from nnpipe.tracking.writer import ProcessWriter, _coalesce, shared_writer

ROOT = Path(__file__).resolve().parents[2]


def run_script(code: str, store: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def wait_gone(pid: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            pytest.fail(f"writer process {pid} still running after {timeout} s")
        time.sleep(0.1)


def test_the_training_process_never_imports_mlflow(store):
    # All MLflow work happens in the writer; the caller only queues plain data.
    proc = run_script(
        """
        import json, sys
        from nnpipe.tracking import MlflowTracker, loss_curve_figure
        tracker = MlflowTracker("no-mlflow-here")
        with tracker.run("r") as run_id:
            tracker.log_params({"model": {"hidden": [4, 2]}})
            callback = tracker.epoch_callback()
            for epoch in range(1, 51):
                callback({"epoch": epoch, "train_loss": 1.0 / epoch})
            tracker.log_metrics({"r2": 0.5})
            tracker.log_figure(loss_curve_figure([1.0, 0.5]), "plots/loss.png")
            tracker.log_text("hi", "note.txt")
        tracker.wait()
        print(json.dumps({"run_id": run_id, "mlflow": "mlflow" in sys.modules}))
        """,
        store,
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["mlflow"] is False
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params == {"model.hidden": "[4, 2]"}
    assert len(client.get_metric_history(result["run_id"], "train_loss")) == 50
    assert {a.path for a in client.list_artifacts(result["run_id"])} == {"plots", "note.txt"}


def test_a_script_that_exits_without_waiting_loses_no_write(store):
    # Normal interpreter exit, no wait(), epoch metrics still buffered
    # (flush_seconds=3600): one run ended by its `with` block, one never ended.
    proc = run_script(
        """
        from nnpipe.tracking import MlflowTracker
        tracker = MlflowTracker("exits", flush_seconds=3600)
        with tracker.run("ended") as ended:
            callback = tracker.epoch_callback()
            for epoch in range(1, 51):
                callback({"epoch": epoch, "train_loss": 1.0 / epoch})
        still_open = tracker.start_run("never ended")
        callback = tracker.epoch_callback()
        for epoch in range(1, 51):
            callback({"epoch": epoch, "train_loss": 2.0 / epoch})
        tracker.log_metrics({"r2": 0.5})
        print(ended, still_open, flush=True)
        """,
        store,
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    ended, still_open = out.split()
    client = MlflowClient(tracking_uri=store)
    assert client.get_run(ended).info.status == "FINISHED"
    for run_id, scale in ((ended, 1.0), (still_open, 2.0)):
        got = [(m.step, m.value) for m in client.get_metric_history(run_id, "train_loss")]
        assert sorted(got) == [(e, scale / e) for e in range(1, 51)]
    assert client.get_run(still_open).data.metrics["r2"] == 0.5


def test_writes_queued_before_the_caller_dies_are_stored(store):
    # os._exit skips every exit handler: the writer sees its socket close and still
    # stores what it had been sent.
    proc = run_script(
        """
        import os
        from nnpipe.tracking import MlflowTracker
        tracker = MlflowTracker("abandoned")
        run_id = tracker.start_run("dies")
        callback = tracker.epoch_callback(flush_seconds=0)
        for epoch in range(1, 201):
            callback({"epoch": epoch, "train_loss": 1.0 / epoch})
        tracker.log_text("still here", "note.txt")
        tracker.end_run()
        print(run_id, tracker.writer.process.pid, flush=True)
        os._exit(0)
        """,
        store,
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    run_id, writer_pid = out.split()
    wait_gone(int(writer_pid))
    client = MlflowClient(tracking_uri=store)
    assert client.get_run(run_id).info.status == "FINISHED"
    assert len(client.get_metric_history(run_id, "train_loss")) == 200
    assert Path(client.download_artifacts(run_id, "note.txt")).read_text() == "still here"


def test_ctrl_c_to_the_process_group_ends_the_run_killed_with_its_metrics(store):
    # The terminal sends SIGINT to the whole group: the writer ignores it and records
    # the caller's KeyboardInterrupt as the run's end.
    proc = run_script(
        """
        import time
        from nnpipe.tracking import MlflowTracker
        tracker = MlflowTracker("interrupted")
        with tracker.run("ctrl-c") as run_id:
            callback = tracker.epoch_callback()
            for epoch in range(1, 4):
                callback({"epoch": epoch, "train_loss": float(epoch)})
            print(run_id, flush=True)
            while True:
                time.sleep(0.05)
        """,
        store,
        start_new_session=True,
    )
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags[ERROR_TAG].startswith("KeyboardInterrupt")
    assert [m.step for m in client.get_metric_history(run_id, "train_loss")] == [1, 2, 3]


def test_a_rejected_write_is_reported_by_wait_and_later_writes_still_land(store):
    tracker = MlflowTracker("rejected")
    with tracker.run("r") as run_id:
        tracker.log_params({"lr": 0.1})
        tracker.log_params({"lr": 0.2})  # MLflow refuses to change a logged parameter
        tracker.log_metrics({"after": 1.0})
        refused = r"(?s)1 queued tracking write.*log_batch for run.*'lr'"
        with pytest.raises(TrackingError, match=refused):
            tracker.wait()
    tracker.wait()  # reported once; nothing new failed
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.1" and run.data.metrics["after"] == 1.0


def test_errors_of_calls_come_back_as_their_own_type(store, tmp_path):
    tracker = MlflowTracker("errors")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with tracker.run():
        from nnpipe.core.serialization import ModelFileError

        with pytest.raises(ModelFileError, match="garbage.npz") as info:
            tracker.log_model(garbage)
        assert any("tracking writer process" in note for note in info.value.__notes__)
    with pytest.raises(TrackingError, match="MlflowException.*0123456789abcdef"):
        MlflowTracker.attach("0123456789abcdef" * 2)


def test_a_dead_writer_is_reported_and_replaced(store):
    tracker = MlflowTracker("crash")
    writer = tracker.writer
    assert isinstance(writer, ProcessWriter)
    run_id = tracker.start_run("before the crash")
    writer.process.kill()
    writer.process.wait(timeout=30)
    with pytest.raises(TrackingError, match="tracking writer process .* is gone"):
        for _ in range(3):  # the first send may still fit in the socket buffer
            tracker.log_metrics({"lost": 1.0}, run_id=run_id)
            tracker.wait()
    fresh = MlflowTracker("crash")
    assert fresh.writer is not writer and fresh.writer is shared_writer()
    with fresh.run("after the crash") as again:
        fresh.log_metrics({"kept": 2.0})
    assert fresh.client.get_run(again).data.metrics == {"kept": 2.0}


@pytest.mark.parametrize("background", [True, False])
def test_background_and_inline_store_the_same_run(store, background):
    tracker = MlflowTracker(f"same-{background}", background=background)
    with tracker.run("r") as run_id:
        tracker.log_params({"a": {"b": 1}})
        tracker.set_tags({"kind": "test"})
        with tracker.epoch_callback() as callback:
            for epoch in range(1, 6):
                callback({"epoch": epoch, "train_loss": 1.0 / epoch})
        tracker.log_dict({"x": 1}, "config.json")
        tracker.log_figure(loss_curve_figure([1.0, 0.5, 0.25]), "plots/loss.png")
    client = tracker.client
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"a.b": "1"} and run.data.tags["kind"] == "test"
    history = [(m.step, m.value) for m in client.get_metric_history(run_id, "train_loss")]
    assert history == [(e, 1.0 / e) for e in range(1, 6)]
    assert json.loads(Path(client.download_artifacts(run_id, "config.json")).read_text()) == {
        "x": 1
    }
    png = Path(client.download_artifacts(run_id, "plots/loss.png")).read_bytes()
    assert png.startswith(b"\x89PNG")


def test_a_figure_is_logged_as_it_was_when_logged(store):
    tracker = MlflowTracker("snapshot")
    figure = loss_curve_figure([1.0, 0.5, 0.25])
    with tracker.run() as run_id:
        tracker.log_figure(figure, "plots/before.png")
        figure.axes[0].set_title("changed afterwards")
        figure.set_size_inches(3, 2)
        tracker.log_figure(figure, "plots/after.png")
    client = tracker.client
    before = Path(client.download_artifacts(run_id, "plots/before.png")).read_bytes()
    after = Path(client.download_artifacts(run_id, "plots/after.png")).read_bytes()
    assert before != after
    assert int.from_bytes(before[16:20], "big") == 600  # 6 x 4 inches at 100 dpi
    assert int.from_bytes(after[16:20], "big") == 300


def test_queued_metric_writes_of_one_run_coalesce_up_to_the_batch_limit():
    def metrics(run: str, n: int) -> tuple:
        return ("send", "log_batch", ("uri", run, [("m", 1.0, 0, i) for i in range(n)], (), ()), {})

    params = ("send", "log_batch", ("uri", "a", (), [("p", "1")], ()), {})
    merged = _coalesce([metrics("a", 3), metrics("a", 4), params, metrics("a", 2), metrics("b", 1)])
    assert [(m[2][1], len(m[2][2]), bool(m[2][3])) for m in merged] == [
        ("a", 7, False),
        ("a", 0, True),
        ("a", 2, False),
        ("b", 1, False),
    ]
    assert len(_coalesce([metrics("a", 600), metrics("a", 600)])) == 2


def test_relative_store_paths_mean_the_callers_directory(tmp_path):
    assert absolute_tracking_uri("sqlite:///m.db", tmp_path) == f"sqlite:///{tmp_path}/m.db"
    assert absolute_tracking_uri("sqlite:////abs/m.db", tmp_path) == "sqlite:////abs/m.db"
    assert absolute_tracking_uri("runs", tmp_path) == str(tmp_path / "runs")
    assert absolute_tracking_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"


def test_a_figure_that_cannot_be_pickled_is_rendered_here_and_still_logged(store):
    from matplotlib.ticker import FuncFormatter

    tracker = MlflowTracker("unpicklable")
    figure = loss_curve_figure([1.0, 0.5, 0.25])
    figure.axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1f}"))
    with tracker.run() as run_id:
        tracker.log_figure(figure, "plots/lambda.png")
    png = Path(tracker.client.download_artifacts(run_id, "plots/lambda.png")).read_bytes()
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize("background", [True, False])
def test_log_plot_builds_the_figure_where_the_writes_happen(store, background):
    tracker = MlflowTracker(f"plots-{background}", background=background)
    curve = [1.0, 0.5, 0.25, 0.2]
    with tracker.run() as run_id:
        tracker.log_plot("plots/loss.png", loss_curve_figure, curve, [1.1, 0.6, 0.3, 0.3])
        tracker.log_plot("plots/lin.png", loss_curve_figure, curve, log_scale=False)
        tracker.log_plot("plots/local.png", lambda c: loss_curve_figure(c), curve)  # built here
    client = tracker.client
    for name in ("loss", "lin", "local"):
        png = Path(client.download_artifacts(run_id, f"plots/{name}.png")).read_bytes()
        assert png.startswith(b"\x89PNG")
    expected = render_png(loss_curve_figure(curve, [1.1, 0.6, 0.3, 0.3]))
    assert Path(client.download_artifacts(run_id, "plots/loss.png")).read_bytes() == expected


def test_a_plot_that_fails_in_the_writer_is_reported_by_wait(store):
    tracker = MlflowTracker("bad-plot")
    with tracker.run():
        tracker.log_plot("plots/empty.png", loss_curve_figure, [])
        with pytest.raises(TrackingError, match="loss_curve must be a non-empty"):
            tracker.wait()


def test_wait_for_writes_needs_no_tracker_at_hand(store):
    from nnpipe.tracking import wait_for_writes

    def train_somewhere() -> str:
        tracker = MlflowTracker("elsewhere")
        with tracker.run() as run_id:
            tracker.log_metrics({"loss": 0.5})
        return run_id

    run_id = train_somewhere()
    wait_for_writes()
    run = MlflowClient(tracking_uri=store).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics == {"loss": 0.5}


def test_mlflow_variables_set_after_the_writer_started_reach_it(
    store, tmp_path, empty_store_file, monkeypatch
):
    import shutil

    import numpy as np

    from nnpipe.core.mlp import MLPRegressor

    tracker = MlflowTracker("registry-elsewhere")
    tracker.experiment_id  # noqa: B018  (the writer is running before the variable is set)
    registry_db = tmp_path / "registry.db"
    shutil.copyfile(empty_store_file, registry_db)
    registry = f"sqlite:///{registry_db}"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry)
    X = np.random.default_rng(0).normal(size=(64, 3))
    model = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, X.sum(axis=1))
    model.save(tmp_path / "net.npz")
    with tracker.run():
        tracker.log_model(
            tmp_path / "net.npz", input_example=X[:2], registered_model_name="elsewhere"
        )
    tracker.wait()
    version = MlflowClient(tracking_uri=store, registry_uri=registry).get_model_version(
        "elsewhere", "1"
    )
    assert version.name == "elsewhere"
    assert MlflowClient(tracking_uri=store, registry_uri=store).search_registered_models() == []
