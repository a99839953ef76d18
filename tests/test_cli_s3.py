"""The ``nnpipe`` command on s3:// paths against a real S3 server (moto's, on 127.0.0.1).

The same commands run once on s3:// and once on local paths must give the same
weights (bit for bit), recall states and predictions; a store that refuses or
does not answer is one line and exit code 2; credentials never show.
"""

from __future__ import annotations

import io
import json
import socket

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import s3fs

from nnpipe.cli import EXIT_OK
from nnpipe.core.trained_model import TrainedModel
from nnpipe.data import storage
from nnpipe.data.recall_job import read_results
from tests.test_cli import assert_clean_error

pytestmark = pytest.mark.service


MAKE_REG = "make-data regression {root}/reg --rows 1200 --features 3 --rows-per-partition 300"
MAKE_HOP = "make-data hopfield {root}/hop --rows 200 --neurons 32 --patterns 3"
MAKE_HOP += " --rows-per-partition 50"


def _config(root: str, tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"workdir: {root}/work\n"
        f"data: {{regression_dir: {root}/reg, hopfield_dir: {root}/hop, generate: false}}\n"
        "train: {hidden_layer_sizes: [8], batch_size: 64}\n"
    )
    return str(path)


def _run_all(nnpipe, root: str, tmp_path, name: str) -> dict:
    """make-data -> prepare -> train (one process, 2 workers) -> recall -> predict under root."""
    config = _config(root, tmp_path, name)
    for command in (MAKE_REG, MAKE_HOP):
        code, _, err = nnpipe(*command.format(root=root).split())
        assert code == EXIT_OK, err
    results = {}
    for key, args in (
        ("prepare", ["prepare", "--config", config]),
        ("train", ["train", "--config", config, "--epochs", "2"]),
        ("train2", ["train", "--config", config, "--epochs", "2", "--workers", "2"]),
        ("recall", ["recall", "--config", config, "--output", f"{root}/results"]),
    ):
        code, out, err = nnpipe(*args, "--json")
        assert code == EXIT_OK, err
        results[key] = json.loads(out)
    model = results["train"]["summary"]["model_path"]
    code, _, err = nnpipe("predict", model, f"{root}/reg/part-00000.parquet", f"{root}/pred.csv")
    assert code == EXIT_OK, err
    return results


def _weights(path: str) -> list[np.ndarray]:
    return storage.load_file(TrainedModel.load, path).network.coefs_


def test_every_command_on_s3_gives_what_it_gives_on_local_paths(
    prefect_harness, mlflow_uri, nnpipe, s3_env, tmp_path
):
    remote = _run_all(nnpipe, f"s3://{s3_env}/nn", tmp_path, "remote")
    local = _run_all(nnpipe, str(tmp_path / "local"), tmp_path, "local")
    assert remote["train"]["summary"]["scaler_source"] == "prepare_data"
    assert remote["train2"]["summary"]["workers"] == 2
    for key in ("train", "train2"):
        mine, theirs = (_weights(r[key]["summary"]["model_path"]) for r in (remote, local))
        assert all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))
        assert remote[key]["summary"]["checkpoint_dir"].startswith(f"s3://{s3_env}/nn/work/")
    states = []
    for root in (f"s3://{s3_env}/nn", str(tmp_path / "local")):
        table = read_results(f"{root}/results", ["probe_id", "state"]).sort_by("probe_id")
        states.append(np.stack(table.column("state").to_numpy(zero_copy_only=False)))
    assert states[0].shape == (200, 32) and np.array_equal(states[0], states[1])
    fs = s3fs.S3FileSystem()
    remote_pred = pd.read_csv(io.BytesIO(fs.cat_file(f"{s3_env}/nn/pred.csv")))
    pd.testing.assert_frame_equal(remote_pred, pd.read_csv(tmp_path / "local" / "pred.csv"))
    # Every file went to the bucket: a scaler, a checkpoint state, a recall partition.
    found = fs.find(f"{s3_env}/nn/work")
    assert any(p.endswith("scalers/x_scaler.npz") for p in found)
    assert any(p.endswith("training_state.json") for p in found)


def test_secrets_in_storage_options_are_never_shown_or_logged(
    prefect_harness, mlflow_uri, nnpipe, s3_server, s3_env, tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    code, _, err = nnpipe(*MAKE_REG.format(root=f"s3://{s3_env}/d").split())
    assert code == EXIT_OK, err
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name)
    s3fs.S3FileSystem.clear_instance_cache()
    config = tmp_path / "c.yaml"
    config.write_text(
        f"workdir: s3://{s3_env}/w\nstorage_options:\n  key: {s3_server.key}\n"
        f"  secret: {s3_server.secret}\n"
        f"  client_kwargs: {{endpoint_url: '{s3_server.endpoint}'}}\n"
    )
    args = ["train", "--config", str(config), "--dataset", f"s3://{s3_env}/d/reg", "--epochs", "1"]
    code, printed, _ = nnpipe(*args, "--print-config")
    assert code == EXIT_OK and "***" in printed and s3_server.secret not in printed
    code, out, err = nnpipe(*args, "--json")
    assert code == EXIT_OK, err
    assert s3_server.secret not in out + err and s3_server.key not in out + err
    run = MlflowClient().get_run(json.loads(out)["run_ids"]["train_bp"])
    shown = json.dumps([run.data.params, run.data.tags])
    assert s3_server.endpoint in shown  # the options are logged, their credentials masked
    assert s3_server.secret not in shown and s3_server.key not in shown
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(run.data.tags["prefect.flow_run_id"])
    stored = json.dumps(flow_run.parameters, default=str)
    assert s3_server.endpoint in stored and s3_server.secret not in stored


def _silent_port() -> tuple[socket.socket, int]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock, sock.getsockname()[1]


def test_a_missing_bucket_is_one_line_and_exit_2(nnpipe, s3_env):
    code, _, err = nnpipe(*MAKE_REG.format(root="s3://no-such-bucket-nnpipe/x").split())
    assert_clean_error(code, err, "no-such-bucket-nnpipe", "bucket does not exist")
    code, _, err = nnpipe("recall", "--dataset", "s3://no-such-bucket-nnpipe/hop")
    assert_clean_error(code, err, "no-such-bucket-nnpipe")


def test_wrong_credentials_are_one_line_and_exit_2(nnpipe, s3_env, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    code, _, err = nnpipe(*MAKE_REG.format(root=f"s3://{s3_env}/x").split())
    assert_clean_error(code, err, f"s3://{s3_env}/x", "access denied", "AWS_ACCESS_KEY_ID")
    assert "not-the-secret" not in err


def test_a_write_the_bucket_denies_is_one_line_and_exit_2_and_loses_nothing(
    nnpipe, s3_server, s3_env
):
    code, _, err = nnpipe(*MAKE_REG.format(root=f"s3://{s3_env}/ro").split())
    assert code == EXIT_OK, err
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{s3_env}/ro/*",
            }
        ],
    }
    s3_server.client().put_bucket_policy(Bucket=s3_env, Policy=json.dumps(policy))
    s3fs.S3FileSystem.clear_instance_cache()
    before = s3fs.S3FileSystem().find(f"{s3_env}/ro")
    args = MAKE_REG.format(root=f"s3://{s3_env}/ro/more").split()
    code, _, err = nnpipe(*args)
    assert_clean_error(code, err, f"s3://{s3_env}/ro/more", "access denied")
    assert s3fs.S3FileSystem().find(f"{s3_env}/ro") == before
    table = pq.read_table(f"{s3_env}/ro/reg/part-00000.parquet", filesystem=s3fs.S3FileSystem())
    assert table.num_rows == 300


@pytest.mark.parametrize("answer", ["refused", "silent"])
def test_an_endpoint_that_does_not_answer_is_one_line_and_exit_2(
    nnpipe, s3_env, monkeypatch, answer
):
    sock, port = _silent_port()
    if answer == "refused":
        sock.close()  # nothing listens there any more
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    try:
        code, _, err = nnpipe(*MAKE_REG.format(root=f"s3://{s3_env}/x").split())
    finally:
        sock.close()
    assert_clean_error(code, err, f"http://127.0.0.1:{port}", "does not answer")


def test_serving_refuses_credentials_in_the_config(nnpipe, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("storage_options: {key: AKIAX, secret: hush, client_kwargs: {}}\n")
    code, _, err = nnpipe("serve", "--config", config, "--list")
    assert_clean_error(code, err, "storage_options.key", "AWS_ACCESS_KEY_ID")
    assert "hush" not in err
