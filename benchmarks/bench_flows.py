"""Orchestration overhead of the ``train_bp`` flow against the same training as library calls.

Direct: open the dataset, fit the scalers on the local Dask cluster, train out of
core, evaluate and save: the flow's work, with no Prefect and no MLflow. Flow: the
``train_bp`` flow (Prefect task runs, MLflow params, per-epoch metrics, artifacts,
the pyfunc model and its registration). Prefect's fixed start-up (the temporary
server) is measured separately with an empty flow and excluded from the ratio.

    python benchmarks/bench_flows.py          # ~60 s job: 400k rows x 30 epochs, 3 repeats
    python benchmarks/bench_flows.py --quick  # a few seconds per job, 1 repeat

Target: flow wall time <= 1.15 x direct wall time, plus Prefect's fixed start-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def direct_training(config) -> float:
    """The flow's work as plain library calls; return its wall time."""
    from flows.cluster import dask_client
    from flows.train_bp import evaluate, make_split, save_model, train_network
    from nnpipe.core.trained_model import TrainedModel
    from nnpipe.data.dataset import ParquetDataset
    from nnpipe.data.scaling import fit_scalers

    start = time.perf_counter()
    dataset = ParquetDataset(config.dataset_path, targets=config.target)
    split = make_split(config)
    with dask_client(None) as client:
        scalers = fit_scalers(
            dataset, config.scaler, config.scaler, subset="train", split=split, client=client
        )
        with tempfile.TemporaryDirectory() as tmp:
            result = train_network(
                config, dataset, split, scalers, client, Path(tmp) / "checkpoints"
            )
            trained = TrainedModel(
                result.model, scalers[0], dataset.feature_names, dataset.target_names
            )
            evaluate.fn(trained, dataset, split)
            save_model(trained, Path(tmp))
    return time.perf_counter() - start


def flow_training(config) -> float:
    """The train_bp flow; return its wall time."""
    from flows.train_bp import train_bp

    start = time.perf_counter()
    train_bp(config=config)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small job, one repeat")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    rows, epochs, repeats = (20_000, 4, 1) if args.quick else (400_000, 30, 3)
    repeats = args.repeats or repeats

    from prefect import flow

    from flows.config import TrainConfig
    from flows.datasets import write_dataset

    work = Path(tempfile.mkdtemp(prefix="nnpipe-bench-flows-"))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    write_dataset(
        "regression", work / "data", n_rows=rows, n_features=16, rows_per_partition=20_000
    )
    config = TrainConfig(
        workdir=work,
        dataset=work / "data",
        hidden_layer_sizes=[64, 64],
        max_epochs=epochs,
        n_iter_no_change=epochs + 1,  # every repeat trains the same number of epochs
        registered_model_name="nnpipe-bench",
    )

    @flow(name="empty")
    def empty() -> None:
        return None

    start = time.perf_counter()
    empty()
    startup = time.perf_counter() - start
    # Warm both paths once (imports, MLflow store creation) before timing.
    warm = config.model_copy(update={"max_epochs": 1, "n_iter_no_change": 2})
    direct_training(warm)
    flow_training(warm)

    direct, flowed = [], []
    for _ in range(repeats):  # interleaved: machine load hits both alike
        direct.append(direct_training(config))
        flowed.append(flow_training(config))
    d, f = statistics.median(direct), statistics.median(flowed)
    print(f"machine load average: {os.getloadavg()[0]:.2f} (2 cores)")
    print(f"job: {rows} rows x 16 features, 64-64 tanh MLP, {epochs} epochs, {repeats} repeats")
    print(f"prefect fixed start-up (temporary server, empty flow): {startup:.1f} s")
    print(f"direct library calls, median: {d:.2f} s   ({', '.join(f'{x:.2f}' for x in direct)})")
    print(f"train_bp flow, median:        {f:.2f} s   ({', '.join(f'{x:.2f}' for x in flowed)})")
    print(f"overhead: {f - d:+.2f} s = {100 * (f - d) / d:+.1f}% of direct (target <= +15%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
