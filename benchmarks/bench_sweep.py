"""Sweeps on two Dask workers: parallel trials against one trial, halving against the grid.

Parallel: K = 8 trials (one per learning rate) on a local cluster of two
single-threaded worker processes, against one trial alone on the same cluster.
Target: the 8 take <= 1.1 x ceil(K / 2) x one trial's time.

Halving: a grid of 9 configurations (3 learning rates x 3 layer shapes) trained
to 27 epochs each, against successive halving over the same grid (rungs of 3, 9
and 27 epochs, eta 3) on the synthetic regression set. Target: halving's best
validation loss within 2% of the grid's best, in <= 40% of the grid's epochs.
Both run the sweep flow's own scheduling (``train_trials``) without MLflow, each
in a fresh directory so nothing is reused.

    python benchmarks/bench_sweep.py          # ~2-3 min on 2 cores: 3 repeats
    python benchmarks/bench_sweep.py --quick  # smaller data, 1 repeat
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

K = 8


def sweep_config(work: Path, data: Path, tag: str, **values):
    from flows.sweep_config import parse_sweep_config

    train = {"dataset": str(data), "batch_size": 128, "n_iter_no_change": 1000}
    train.update(values.pop("train", {}))
    return parse_sweep_config({"workdir": str(work / tag), "train": train, **values})


def run_sweep(client, config) -> tuple[float, dict]:
    """The flow's trial scheduling for ``config`` on ``client``; (seconds, results)."""
    from flows.sweep_bp import train_trials, trial_inputs
    from flows.sweep_trials import make_trials
    from flows.train_bp import open_dataset

    trials = make_trials(config)
    inputs = trial_inputs.fn(trials, open_dataset.fn(config.train), client)
    start = time.perf_counter()
    results = train_trials.fn(
        client, trials, config.budgets, config.halving.eta, inputs, lambda *_: None
    )
    return time.perf_counter() - start, results


def parallel(client, work: Path, data: Path, epochs: int, repeats: int) -> None:
    rates = [1e-3 * (1 + i) for i in range(K)]
    one_times, k_times, one_inside, k_inside = [], [], [], []
    train = {"hidden_layer_sizes": [64, 64], "max_epochs": epochs}
    for r in range(repeats):  # interleaved: machine load hits both alike
        one = sweep_config(
            work, data, f"one-{r}", train=train, space={"learning_rate_init": rates[:1]}
        )
        seconds, results = run_sweep(client, one)
        one_times.append(seconds)
        one_inside += [r["train_seconds"] for r in results.values()]
        many = sweep_config(work, data, f"k-{r}", train=train, space={"learning_rate_init": rates})
        seconds, results = run_sweep(client, many)
        k_times.append(seconds)
        k_inside += [r["train_seconds"] for r in results.values()]
    t1, tk = statistics.median(one_times), statistics.median(k_times)
    # Training time inside the tasks: when it grows with K, the workers were short of cores.
    print(
        f"training inside a trial task, median: alone {statistics.median(one_inside):.2f} s, "
        f"{K} on 2 workers {statistics.median(k_inside):.2f} s"
    )
    bound = math.ceil(K / 2) * t1
    print(f"one trial ({epochs} epochs, 64-64 MLP), median: {t1:.2f} s  {_list(one_times)}")
    print(f"K={K} trials on 2 workers, median:       {tk:.2f} s  {_list(k_times)}")
    print(
        f"ratio K trials / (ceil(K/2) x one trial) = {tk:.2f} / {bound:.2f} = {tk / bound:.3f}"
        " (target <= 1.1)"
    )


def halving_against_grid(client, work: Path, data: Path) -> None:
    space = {
        "learning_rate_init": [3e-4, 1e-3, 3e-3],
        "hidden_layer_sizes": [[16], [64], [64, 64]],
    }
    train = {"max_epochs": 27}
    grid = sweep_config(work, data, "grid", train=train, space=space)
    halving = sweep_config(
        work,
        data,
        "halving",
        train=train,
        space=space,
        strategy="halving",
        halving={"min_epochs": 3, "eta": 3},
    )
    out = {}
    for name, config in (("grid", grid), ("halving", halving)):
        seconds, results = run_sweep(client, config)
        final = [r for r in results.values() if r["budget"] == config.budgets[-1]]
        best = min(final, key=lambda r: r["val_loss"])
        epochs = sum(r["epochs"] for r in results.values())
        out[name] = (best, epochs, seconds)
        print(
            f"{name:8s} {len(results)} configs, budgets {config.budgets}: best val_loss "
            f"{best['val_loss']:.5f} ({_params(best['params'])}), {epochs} epochs, {seconds:.1f} s"
        )
    (g, g_epochs, g_s), (h, h_epochs, h_s) = out["grid"], out["halving"]
    print(
        f"halving / grid: best val_loss {h['val_loss'] / g['val_loss']:.4f} (target <= 1.02), "
        f"epochs {h_epochs}/{g_epochs} = {h_epochs / g_epochs:.1%} (target <= 40%), "
        f"time {h_s / g_s:.1%}"
    )


def _list(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def _params(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, one repeat")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    rows, epochs, repeats = (8_000, 3, 1) if args.quick else (20_000, 5, 3)
    repeats = args.repeats or repeats

    from distributed import Client, LocalCluster

    from flows.datasets import write_dataset

    work = Path(tempfile.mkdtemp(prefix="nnpipe-bench-sweep-"))
    data = work / "data"
    write_dataset("regression", data, n_rows=rows, rows_per_partition=rows // 10)
    print(f"machine load average: {os.getloadavg()[0]:.2f} (2 cores)")
    print(f"data: synthetic regression, {rows} rows x 8 features in 10 partitions; {work}")
    # Worker processes, one thread each: one trial per worker slot, no GIL shared.
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        warm = sweep_config(
            work, data, "warm", train={"max_epochs": 1}, space={"alpha": [0.0, 1e-4]}
        )
        run_sweep(client, warm)  # imports and first reads on both workers
        parallel(client, work, data, epochs, repeats)
        halving_against_grid(client, work, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
