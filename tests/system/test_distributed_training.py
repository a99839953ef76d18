"""Data-parallel training on real `dask scheduler` / `dask worker` processes, losing a worker.

The training runs from here (the library call the train_bp flow makes) so that a
round callback can SIGKILL a worker's process group at a chosen moment: after the
third round, in the middle of the worker's first epoch of its share.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytestmark = [pytest.mark.service, pytest.mark.slow]


def model():
    from nnpipe.core.mlp import MLPRegressor

    return MLPRegressor(hidden_layer_sizes=(16,), dtype="float64", random_state=0)


def train(dataset, client, round_callback=None):
    from nnpipe.training import train_distributed

    return train_distributed(
        model(), dataset, workers=2, client=client, local_steps=2, warmup_epochs=1,
        epochs=3, batch_size=64, early_stopping=False, round_callback=round_callback,
    )  # fmt: skip


def test_training_survives_losing_a_worker_mid_run(cluster):
    from distributed import Client, LocalCluster

    from flows.datasets import write_dataset
    from nnpipe.data import ParquetDataset

    path = write_dataset(
        "regression", cluster.data_dir / "distributed" / "reg", n_rows=6_000, n_features=8,
        rows_per_partition=500,
    )["path"]  # fmt: skip
    dataset = ParquetDataset(path, targets="y")
    killed: dict[str, str] = {}
    rounds: list[dict] = []

    with Client(cluster.dask_address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}

        def kill_after_third_round(metrics):
            rounds.append(metrics)
            if metrics["round"] == 3 and not killed:
                # The worker of the first share (the run takes the workers in address
                # order): its next rounds must run on the other worker.
                address = sorted(names)[0]
                killed["name"] = names[address]
                cluster.kill(names[address])

        # Bounded: a hang fails the test. Not a `with` block, which would wait for the
        # hung training; leaving the client's block closes it, which ends the training.
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            result = pool.submit(train, dataset, client, kill_after_third_round).result(300)
        finally:
            pool.shutdown(wait=False)

    assert killed, "no worker was killed"
    assert result.epochs_done == 3 and result.workers == 2
    assert result.workers_lost == 1, "the run did not record the lost worker"
    assert rounds[-1]["workers_alive"] == 1
    assert [m["workers_lost"] for m in result.history][-1] == 1
    # Every round is a function of its inputs: rerun on the survivor, the tasks gave
    # what they would have, so the weights are those of an undisturbed run.
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as local,  # fmt: skip
        Client(local) as local_client,
    ):
        undisturbed = train(dataset, local_client)
    a = result.model.to_arrays()[0]["params"]
    b = undisturbed.model.to_arrays()[0]["params"]
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-6
    assert result.history[-1]["train_loss"] == pytest.approx(
        undisturbed.history[-1]["train_loss"], rel=1e-6
    )
