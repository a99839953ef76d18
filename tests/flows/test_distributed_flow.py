"""train_bp with a ``distributed`` section: one network trained by two Dask workers, tracked."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import TrainConfig, load_config
from flows.datasets import write_dataset
from flows.train_bp import train_bp

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def cluster_address():
    """Two single-threaded workers in this process (the flow connects by address)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


def test_distributed_run_logs_workers_rounds_and_epochs(tmp_path, cluster_address):
    from mlflow import MlflowClient

    data = write_dataset("regression", tmp_path / "reg", n_rows=2_400, n_features=4,
                         rows_per_partition=400)["path"]  # fmt: skip
    config = TrainConfig(
        workdir=tmp_path, dataset=data, dask_address=cluster_address, hidden_layer_sizes=[16],
        max_epochs=3, batch_size=64, learning_rate_init=0.01,
        distributed={"workers": 2, "local_steps": 4, "warmup_epochs": 1},
    )  # fmt: skip
    result = train_bp(config=config)
    summary, run_id = result["summary"], result["run_ids"]["train_bp"]
    assert summary["workers"] == 2 and summary["epochs"] == 3 and summary["r2"] > 0.3
    run = MlflowClient().get_run(run_id)
    assert run.data.params["training.workers"] == "2"
    assert run.data.params["training.local_steps"] == "4"
    assert run.data.metrics["workers_lost"] == 0
    assert run.data.metrics["local_steps"] == 4 and summary["local_steps"] == 4
    client = MlflowClient()
    rounds = client.get_metric_history(run_id, "round_train_loss")
    # ~960 training rows a worker: 15 batches of 64, one round each, then rounds of 4.
    assert len(rounds) >= 15 + 2 * 4
    alive = client.get_metric_history(run_id, "workers_alive")
    assert {m.value for m in alive} == {2.0}
    assert len(client.get_metric_history(run_id, "communication_seconds")) == 3
    # The checkpoints are the single-process ones, in the run's identity directory, the
    # last two epochs kept (and the best, when it is older).
    checkpoints = Path(summary["checkpoint_dir"])
    kept = sorted(p.name for p in checkpoints.glob("epoch-*.npz"))
    assert kept[-2:] == ["epoch-0002.npz", "epoch-0003.npz"] and len(kept) <= 3
    assert run.data.params["checkpoints.last"].endswith("epoch-0003.npz")


def test_yaml_section_and_workers_flag_set_the_workers(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("distributed:\n  workers: 3\n  local_steps: 2\n")
    config = load_config(path, "train_bp")
    assert (config.distributed.workers, config.distributed.local_steps) == (3, 2)
    flagged = load_config(path, "train_bp", distributed={"workers": 2})
    assert (flagged.distributed.workers, flagged.distributed.local_steps) == (2, 2)
    assert load_config(None, "train_bp").distributed is None
    path.write_text("distributed:\n  workers: 0\n")
    with pytest.raises(ValueError, match=r"distributed.workers: Input should be greater than 0"):
        load_config(path, "train_bp")
    for bad in ("fast", "0", "2.5", "true"):
        path.write_text(f"distributed:\n  local_steps: {bad}\n")
        with pytest.raises(ValueError, match=r"local_steps: .*expected auto or an integer > 0"):
            load_config(path, "train_bp")
    path.write_text("distributed:\n  local_steps: auto\n")
    assert load_config(path, "train_bp").distributed.local_steps == "auto"


def test_config_defaults_are_the_library_defaults():
    from nnpipe.training import distributed

    defaults = TrainConfig(distributed={}).distributed
    assert defaults.local_steps == distributed.DEFAULT_LOCAL_STEPS
    assert defaults.warmup_epochs == distributed.DEFAULT_WARMUP_EPOCHS
    assert defaults.worker_timeout == distributed.DEFAULT_WORKER_TIMEOUT
