"""MlflowTracker against a real embedded SQLite store: runs, params, metrics, lifecycle."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from nnpipe.tracking import (
    MlflowTracker,
    NoopTracker,
    Tracker,
    environment_info,
    flatten_params,
    loss_curve_figure,
    render_png,
)
from nnpipe.tracking.tracker import (
    ERROR_TAG,
    TRACEBACK_ARTIFACT,
    absolute_tracking_uri,
    default_tracking_uri,
)

ROOT = Path(__file__).resolve().parents[2]


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_default_store_is_sqlite_in_cwd_with_artifacts_beside_it(store, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert default_tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    tracker = MlflowTracker("nnpipe-train")
    with tracker.run("defaults") as run_id:
        tracker.log_text("hello", "note.txt")
    tracker.wait()  # nothing buffered remains; the run is read back by another client
    run = MlflowClient(tracking_uri=store).get_run(run_id)
    assert run.info.status == "FINISHED"
    # Where `make ui` (--default-artifact-root ./mlartifacts) looks for them.
    note = tmp_path / "mlartifacts" / "nnpipe-train" / run_id / "artifacts" / "note.txt"
    assert note.read_text() == "hello"


def test_tracking_uri_env_var_wins_over_the_cwd_default(store):
    assert default_tracking_uri() == store
    assert MlflowTracker("x").tracking_uri == store


def test_experiment_is_named_per_flow_and_reused(store):
    a = MlflowTracker("flow-a")
    b = MlflowTracker("flow-b")
    assert a.experiment_id != b.experiment_id
    assert MlflowTracker("flow-a").experiment_id == a.experiment_id
    assert a.client.get_experiment(a.experiment_id).name == "flow-a"


def test_experiment_created_by_racing_processes_resolves_to_one(store):
    ids: list[str] = []
    barrier = threading.Barrier(4)

    def create() -> None:
        tracker = MlflowTracker("raced")
        barrier.wait()
        ids.append(tracker.experiment_id)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 4 and len(set(ids)) == 1


def test_params_are_flattened_and_environment_tagged(store):
    tracker = MlflowTracker("params")
    config = {
        "model": {"hidden_layer_sizes": (16, 8), "alpha": 1e-4, "activation": "tanh"},
        "data": {"fingerprint": "abc123", "rows": {"train": 800, "validation": 200}},
        "seed": 7,
        "extra": {f"p{i}": i for i in range(150)},  # more than one log_batch of params
    }
    with tracker.run("p") as run_id:
        tracker.log_params(config)
    params = tracker.client.get_run(run_id).data.params
    assert params["model.hidden_layer_sizes"] == "[16, 8]"
    assert params["model.alpha"] == "0.0001"
    assert params["data.rows.train"] == "800"
    assert params["data.fingerprint"] == "abc123"
    assert params["seed"] == "7"
    assert params["extra.p149"] == "149"
    tags = tracker.client.get_run(run_id).data.tags
    env = environment_info()
    for key in ("nnpipe_version", "numpy_version", "dask_version", "pyarrow_version"):
        assert tags[f"nnpipe.env.{key}"] == env[key]
    if "git_commit" in env:
        assert tags["nnpipe.env.git_commit"] == env["git_commit"]
        assert tags["mlflow.source.git.commit"] == env["git_commit"]


def test_flatten_params_handles_nesting_sequences_and_long_values():
    nested = {"a": {"b": {"c": 1}}, "l": [1, 2.5], "e": {}, "n": None, "s": "x" * 7000}
    flat = flatten_params(nested)
    assert flat["a.b.c"] == "1"
    assert json.loads(flat["l"]) == [1, 2.5]
    assert flat["e"] == "{}" and flat["n"] == "None"
    assert len(flat["s"]) == 6000 and flat["s"].endswith("[truncated]")


def test_epoch_metrics_are_buffered_then_sent_in_batches(store):
    tracker = MlflowTracker("epochs", flush_seconds=3600)
    with tracker.run("e") as run_id:
        callback = tracker.epoch_callback()
        for epoch in range(30):
            callback(
                {
                    "epoch": epoch,
                    "train_loss": 1.0 / (epoch + 1),
                    "validation_loss": 2.0 / (epoch + 1),
                    "learning_rate": 0.01,
                    "samples_per_second": 1000.0 + epoch,
                    "epoch_seconds": 0.5,
                    "note": "not a number",
                }
            )
        # Nothing sent yet: the buffer goes out in one batch, not per epoch.
        assert tracker.client.get_metric_history(run_id, "train_loss") == []
        callback.flush()
        assert len(tracker.client.get_metric_history(run_id, "train_loss")) == 30
        callback({"train_loss": 0.01})  # no epoch given: the next step
    tracker.wait()
    client = MlflowClient(tracking_uri=store)
    got = history(client, run_id, "train_loss")
    assert got[:30] == [(e, 1.0 / (e + 1)) for e in range(30)]
    assert got[30] == (30, 0.01)  # sent by the run's exit
    assert len(history(client, run_id, "validation_loss")) == 30
    metrics = client.get_run(run_id).data.metrics
    assert {"learning_rate", "samples_per_second", "epoch_seconds"} <= set(metrics)
    assert "note" not in metrics and "epoch" not in metrics


def test_final_metrics_logged_in_one_call(store):
    tracker = MlflowTracker("final")
    with tracker.run() as run_id:
        tracker.log_metrics({"r2": 0.93, "rmse": 0.4, "mae": 0.3, "label": "x"}, step=5)
    metrics = tracker.client.get_run(run_id).data.metrics
    assert metrics == {"r2": 0.93, "rmse": 0.4, "mae": 0.3}
    assert history(tracker.client, run_id, "r2") == [(5, 0.93)]


def test_failing_run_ends_failed_and_keeps_earlier_metrics_and_artifacts(store):
    tracker = MlflowTracker("failures", flush_seconds=3600)
    with pytest.raises(FloatingPointError, match="loss became NaN"):
        with tracker.run("diverges") as run_id:
            tracker.log_params({"lr": 10.0})
            tracker.log_text("{}", "config.json")
            callback = tracker.epoch_callback()
            for epoch in range(3):
                callback({"train_loss": 1.0 + epoch}, step=epoch)
            raise FloatingPointError("loss became NaN at epoch 3")
    run = MlflowClient(tracking_uri=store).get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags[ERROR_TAG] == "FloatingPointError: loss became NaN at epoch 3"
    assert history(tracker.client, run_id, "train_loss") == [(0, 1.0), (1, 2.0), (2, 3.0)]
    assert run.data.params["lr"] == "10.0"
    local = Path(tracker.client.download_artifacts(run_id, TRACEBACK_ARTIFACT))
    text = local.read_text()
    assert "FloatingPointError: loss became NaN" in text and "test_tracker.py" in text
    names = {a.path for a in tracker.client.list_artifacts(run_id)}
    assert "config.json" in names
    assert tracker.run_id is None  # the tracker is ready for the next run


def test_ctrl_c_marks_the_run_killed(store):
    tracker = MlflowTracker("interrupts")
    with pytest.raises(KeyboardInterrupt):
        with tracker.run("interrupted") as run_id:
            tracker.log_metrics({"train_loss": 0.5})
            raise KeyboardInterrupt
    run = tracker.client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.data.metrics["train_loss"] == 0.5
    assert run.data.tags[ERROR_TAG].startswith("KeyboardInterrupt")


def test_another_thread_logs_through_an_explicit_run_id(store):
    tracker = MlflowTracker("threads")
    errors: list[BaseException] = []

    def worker(run_id: str, shard: int) -> None:
        try:
            attached = MlflowTracker.attach(run_id)
            attached.log_metrics({f"shard_{shard}_rows": 100.0 * shard})
            attached.set_tags({f"shard_{shard}": "done"})
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    with tracker.run("parent") as run_id:
        threads = [threading.Thread(target=worker, args=(run_id, k)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    run = tracker.client.get_run(run_id)
    assert run.data.metrics == {"shard_0_rows": 0.0, "shard_1_rows": 100.0, "shard_2_rows": 200.0}
    assert run.data.tags["shard_2"] == "done"


def test_tracker_pickles_for_other_processes(store):
    tracker = MlflowTracker("pickled")
    with tracker.run() as run_id:
        clone = pickle.loads(pickle.dumps(tracker))
        assert clone.run_id == run_id and clone.tracking_uri == store
        clone.log_metrics({"from_clone": 1.0})
    assert tracker.client.get_run(run_id).data.metrics["from_clone"] == 1.0


def test_attach_to_unknown_run_fails_clearly(store):
    with pytest.raises(Exception, match="deadbeef"):
        MlflowTracker.attach("deadbeef" * 4)


def test_nested_run_records_its_parent(store):
    tracker = MlflowTracker("nested")
    with tracker.run("outer") as outer:
        with tracker.run("inner", nested=True) as inner:
            assert tracker.run_id == inner
        assert tracker.run_id == outer
    assert tracker.client.get_run(inner).data.tags["mlflow.parentRunId"] == outer


def test_logging_without_a_run_says_how_to_start_one(store):
    tracker = MlflowTracker("norun")
    with pytest.raises(RuntimeError, match="tracker.run"):
        tracker.log_metrics({"a": 1.0})


def test_unknown_status_is_refused(store):
    tracker = MlflowTracker("status")
    run_id = tracker.start_run()
    with pytest.raises(Exception, match="DONE"):
        tracker.end_run("DONE")
    tracker.end_run("FINISHED")
    assert tracker.client.get_run(run_id).info.status == "FINISHED"


def test_artifacts_config_json_and_loss_curve_png_read_back(store, tmp_path):
    tracker = MlflowTracker("artifacts")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01\x02")
    config = {"model": {"hidden_layer_sizes": [4]}, "seed": 1}
    with tracker.run() as run_id:
        tracker.log_dict(config, "config.json")
        tracker.log_artifact(weights, "model")
        tracker.log_figure(loss_curve_figure([1.0, 0.5, 0.25], [1.2, 0.7, 0.4]), "plots/loss.png")
        with pytest.raises(FileNotFoundError, match="missing.npz"):
            tracker.log_artifact(tmp_path / "missing.npz")
    client = tracker.client
    assert json.loads(Path(client.download_artifacts(run_id, "config.json")).read_text()) == config
    assert Path(client.download_artifacts(run_id, "model/weights.bin")).read_bytes() == (
        b"\x00\x01\x02"
    )
    png = Path(client.download_artifacts(run_id, "plots/loss.png")).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_noop_tracker_and_mlflow_tracker_satisfy_the_protocol(store):
    noop = NoopTracker()
    assert isinstance(noop, Tracker)
    assert isinstance(MlflowTracker("protocol"), Tracker)
    with noop.run("x") as run_id:
        assert run_id is None
        callback = noop.epoch_callback()
        callback({"train_loss": 1.0})
        callback.flush()
        noop.log_params({"a": 1})
        noop.log_text("x", "x.txt")
        assert noop.log_model("missing.npz") is None
    assert noop.start_run("x") is None
    noop.end_run()


def test_bad_experiment_name_is_refused():
    with pytest.raises(ValueError, match="experiment_name"):
        MlflowTracker("")


def test_bad_flush_interval_and_status_are_refused_by_name(store):
    with pytest.raises(ValueError, match=r"flush_seconds must be >= 0, got -1"):
        MlflowTracker("x", flush_seconds=-1)
    tracker = MlflowTracker("status-names")
    tracker.start_run()
    with pytest.raises(ValueError, match=r"'DONE'.*\['FINISHED', 'FAILED', 'KILLED'\]"):
        tracker.end_run("DONE")
    tracker.end_run("FINISHED")


def test_epoch_callback_takes_the_trainer_dict_as_is(store):
    # What nnpipe.training.train_out_of_core passes: epoch from 1, val_loss None without
    # a validation split, samples_per_s inf when an epoch took no measurable time.
    tracker = MlflowTracker("trainer-dict")
    with tracker.run() as run_id:
        callback = tracker.epoch_callback()
        callback(
            {
                "epoch": 1,
                "train_loss": 0.5,
                "val_loss": None,
                "learning_rate": 0.001,
                "samples_per_s": float("inf"),
                "epoch_seconds": 0.0,
            }
        )
    metrics = tracker.client.get_run(run_id).data.metrics
    assert "val_loss" not in metrics
    assert metrics["train_loss"] == 0.5 and metrics["samples_per_s"] > 1e300
    assert history(tracker.client, run_id, "learning_rate") == [(1, 0.001)]


def test_use_tracking_uri_leaves_the_environment_in_charge(tmp_path, monkeypatch):
    import mlflow

    from nnpipe.tracking import use_tracking_uri

    first, inner, later = (f"sqlite:///{tmp_path / name}.db" for name in ("a", "b", "c"))
    mlflow.set_tracking_uri(None)  # no explicit global from earlier code
    monkeypatch.setenv("MLFLOW_TRACKING_URI", first)
    with use_tracking_uri(inner):
        assert mlflow.get_tracking_uri() == inner
    assert mlflow.get_tracking_uri() == first
    monkeypatch.setenv("MLFLOW_TRACKING_URI", later)
    assert mlflow.get_tracking_uri() == later  # not pinned to the value before the block


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


def test_writes_made_before_the_caller_dies_are_stored(store):
    # os._exit skips every exit handler: what was logged before it is already stored.
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
        print(run_id, flush=True)
        os._exit(0)
        """,
        store,
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    run_id = out.strip()
    client = MlflowClient(tracking_uri=store)
    assert client.get_run(run_id).info.status == "FINISHED"
    assert len(client.get_metric_history(run_id, "train_loss")) == 200
    assert Path(client.download_artifacts(run_id, "note.txt")).read_text() == "still here"


def test_ctrl_c_to_the_process_group_ends_the_run_killed_with_its_metrics(store):
    # The terminal sends SIGINT to the whole group: the caller's KeyboardInterrupt
    # is recorded as the run's end, with the epoch metrics buffered until then.
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


def test_a_rejected_write_is_raised_at_the_call_and_later_writes_still_land(store):
    tracker = MlflowTracker("rejected")
    with tracker.run("r") as run_id:
        tracker.log_params({"lr": 0.1})
        with pytest.raises(MlflowException, match="'lr'"):
            tracker.log_params({"lr": 0.2})  # MLflow refuses to change a logged parameter
        tracker.log_metrics({"after": 1.0})
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.1" and run.data.metrics["after"] == 1.0


def test_errors_of_calls_come_back_as_their_own_type(store, tmp_path):
    tracker = MlflowTracker("errors")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with tracker.run():
        from nnpipe.core.serialization import ModelFileError

        with pytest.raises(ModelFileError, match="garbage.npz"):
            tracker.log_model(garbage)
        with pytest.raises(ValueError, match="loss_curve must be a non-empty"):
            tracker.log_plot("plots/empty.png", loss_curve_figure, [])
    with pytest.raises(MlflowException, match="0123456789abcdef"):
        MlflowTracker.attach("0123456789abcdef" * 2)


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


def test_relative_store_paths_mean_the_callers_directory(tmp_path):
    assert absolute_tracking_uri("sqlite:///m.db", tmp_path) == f"sqlite:///{tmp_path}/m.db"
    assert absolute_tracking_uri("sqlite:////abs/m.db", tmp_path) == "sqlite:////abs/m.db"
    assert absolute_tracking_uri("runs", tmp_path) == str(tmp_path / "runs")
    assert absolute_tracking_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"


def test_log_plot_builds_and_logs_the_figure(store):
    tracker = MlflowTracker("plots")
    curve = [1.0, 0.5, 0.25, 0.2]
    with tracker.run() as run_id:
        tracker.log_plot("plots/loss.png", loss_curve_figure, curve, [1.1, 0.6, 0.3, 0.3])
        tracker.log_plot("plots/lin.png", loss_curve_figure, curve, log_scale=False)
        tracker.log_plot("plots/local.png", lambda c: loss_curve_figure(c), curve)
    client = tracker.client
    for name in ("loss", "lin", "local"):
        png = Path(client.download_artifacts(run_id, f"plots/{name}.png")).read_bytes()
        assert png.startswith(b"\x89PNG")
    expected = render_png(loss_curve_figure(curve, [1.1, 0.6, 0.3, 0.3]))
    assert Path(client.download_artifacts(run_id, "plots/loss.png")).read_bytes() == expected
