"""MLflow's artifacts in the topology's bucket, through a tracking server that proxies them.

The compose file's ``mlflow`` service stores artifacts at ``s3://BUCKET/mlflow-artifacts``
on the ``s3`` service (moto's standalone server here) and serves them
(``--serve-artifacts``), so a client needs the tracking URI and nothing else: no
AWS credentials, no endpoint, no boto3 settings.
"""

from __future__ import annotations

import json

import pytest

from tests.system.commands import bucket_keys, run_nnpipe

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_train_without_aws_credentials_logs_its_model_into_the_bucket(cluster, tmp_path):
    from mlflow import MlflowClient

    env = {k: v for k, v in cluster.client_env().items() if not k.startswith("AWS_")}
    env["HOME"] = str(tmp_path)  # no ~/.aws/credentials either
    data = tmp_path / "reg"
    run_nnpipe(["make-data", "regression", str(data), "--rows", "400"], env, tmp_path)
    # Its own registered model: the pipeline test counts nnpipe-regressor's versions.
    config = tmp_path / "train.yaml"
    config.write_text("registered_model_name: bucket-check-regressor\n")
    out = run_nnpipe(
        [
            "train",
            "--config",
            str(config),
            "--dataset",
            str(data),
            "--workdir",
            str(tmp_path / "work"),
            "--epochs",
            "2",
            "--dask-address",
            cluster.dask_address,
            "--json",
        ],
        env,
        tmp_path,
    )
    result = json.loads(out)
    run_id = result["run_ids"]["train_bp"]

    client = MlflowClient(cluster.mlflow_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri
    # The objects are in the bucket: the run's artifacts under the run's prefix, the
    # logged model (weights, scaler, MLmodel) under the model's.
    experiment = f"mlflow-artifacts/{run.info.experiment_id}/"
    keys = bucket_keys(cluster, experiment)
    run_files = {k.removeprefix(f"{experiment}{run_id}/artifacts/") for k in keys}
    assert {"config.json", "plots/loss_curve.svg"} <= run_files, keys
    assert any(k.startswith("model_file/") and k.endswith(".npz") for k in run_files), keys
    model_id = result["summary"]["model_uri"].removeprefix("models:/")
    model_files = [k for k in keys if f"/{model_id}/" in k]
    assert any(k.endswith("/MLmodel") for k in model_files), keys
    # And they come back through the server.
    saved = client.download_artifacts(run_id, "config.json", str(tmp_path))
    assert json.loads(open(saved).read())["max_epochs"] == 2
