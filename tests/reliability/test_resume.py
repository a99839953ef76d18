"""A killed training run continues where it stopped, and leaves no process behind."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest
from mlflow import MlflowClient

from .conftest import (
    one_line,
    own_prefect_server,
    run_main,
    sigkill_leaves_nothing,
    start,
    wait_for_epochs,
)

EPOCHS = 14
# How training runs: each mode is killed and resumed.
TRAIN_MODES = {"single process": [], "two dask workers": ["--workers", "2"]}
CONFIG = "batch_size: 32\nhidden_layer_sizes: [32, 32]\n"


def train_args(datasets, workdir, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)
    return ["train", "--config", config, "--dataset", datasets / "regression",
            "--epochs", EPOCHS, "--workdir", workdir, "--json"]  # fmt: skip


def arrays(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("mode", TRAIN_MODES.values(), ids=list(TRAIN_MODES))
def test_sigkill_leaves_nothing_and_the_same_command_resumes_bitwise(
    mode, datasets, tmp_path, env, in_process
):
    work = tmp_path / "work"
    args = [*train_args(datasets, work, tmp_path), *mode]
    t0 = time.monotonic()
    proc = start(*args, env=own_prefect_server(env), cwd=tmp_path)
    checkpoints = wait_for_epochs(work, proc, 3)
    commands = " ".join(sigkill_leaves_nothing(proc))
    assert "uvicorn" in commands and "reaper.py" in commands, commands

    killed_run = json.loads((checkpoints / "run.json").read_text())["run_id"]
    client = MlflowClient()
    assert client.get_run(killed_run).info.status == "RUNNING"
    done_before = json.loads((checkpoints / "training_state.json").read_text())["epochs_done"]

    print(f"killed after {time.monotonic() - t0:.1f} s")
    code, out, err = run_main(args)  # the same command again
    assert code == 0, err
    result = json.loads(out)
    summary, new_run = result["summary"], result["run_ids"]["train_bp"]
    assert summary["resumed_from"] == done_before >= 3
    assert summary["epochs"] == EPOCHS
    old = client.get_run(killed_run)
    assert old.info.status == "KILLED" and old.data.tags["nnpipe.continued_by"] == new_run
    new = client.get_run(new_run).data
    assert new.params["resumed_from"] == str(done_before)
    assert new.tags["nnpipe.resumed_from_run"] == killed_run
    kept = sorted(p.name for p in checkpoints.glob("epoch-*.npz"))
    assert f"epoch-{EPOCHS:04d}.npz" in kept and 2 <= len(kept) <= 3, kept
    assert new.params["checkpoints.best"].endswith(kept[0]) or len(kept) == 2

    # The uninterrupted run, in this process (the same command, without a second start-up).
    code, out, err = run_main([*train_args(datasets, tmp_path / "reference", tmp_path), *mode])
    assert code == 0, err
    ref = json.loads(out)["summary"]
    assert ref["resumed_from"] == 0
    got, want = arrays(summary["model_path"]), arrays(ref["model_path"])
    assert got.keys() == want.keys()
    for key in want:
        assert np.array_equal(got[key], want[key]), key


def test_restart_starts_over_and_a_finished_run_is_not_redone(datasets, tmp_path, in_process):
    args = train_args(datasets, tmp_path / "work", tmp_path)
    args[args.index("--epochs") + 1] = 3
    code, out, err = run_main(args)
    assert code == 0, err
    first_run = json.loads(out)["run_ids"]["train_bp"]
    code, out, err = run_main(args)
    again = json.loads(out)["summary"]
    assert again["resumed_from"] == 3 and again["epochs"] == 3  # nothing trained again
    client = MlflowClient()
    assert client.get_run(first_run).info.status == "FINISHED"  # not an abandoned run
    code, out, err = run_main([*args, "--restart"])
    assert code == 0, err
    assert json.loads(out)["summary"]["resumed_from"] == 0


def test_sigterm_ends_the_run_killed_with_exit_143_and_checkpoints_kept(datasets, tmp_path, env):
    work = tmp_path / "work"
    proc = start(*train_args(datasets, work, tmp_path), env=env, cwd=tmp_path)
    checkpoints = wait_for_epochs(work, proc, 2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    err = (tmp_path / "err.txt").read_text()
    assert one_line(err) == "nnpipe train: terminated"
    run_id = json.loads((checkpoints / "run.json").read_text())["run_id"]
    run = MlflowClient(env["MLFLOW_TRACKING_URI"]).get_run(run_id)
    assert run.info.status == "KILLED"
    assert len(run.data.metrics) > 0  # what was logged before the signal is stored
    assert json.loads((checkpoints / "training_state.json").read_text())["epochs_done"] >= 2
