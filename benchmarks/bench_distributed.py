"""Data-parallel training and Hopfield recall on 1 vs 2 Dask worker processes.

Every worker is a process with one thread and one BLAS thread, in nnpipe's own
local cluster (``flows.cluster.dask_client``, as ``nnpipe train --workers 2``
starts it); the clusters are started before the clock starts.

1. Training: time for ``train_distributed`` to reach a target validation loss
   with 1 worker (T1) and with 2 workers (T2), same data, model and defaults
   (H, warm-up, learning rate scaled by the workers). The target is the loss the
   1-worker run reaches at epoch ``--target-epoch``. Default size: 1M rows x 8
   features, MLP 8-256-256-1, batch 256 per worker, target after 1 epoch: compute
   dominates, and one epoch nearly converges, as on the datasets distributed
   training is for (on 60k rows and 3 epochs, 2 workers need an epoch more: the
   global batch doubles and the run is limited by its number of steps). Scaling efficiency
   E(2) = T1 / (2 T2); also the share of the 2-worker time spent outside worker
   compute (task and transfer overhead, averaging, validation). ``--local-steps``
   with several values runs the 2-worker case for each H (how the default was
   chosen).
   The ceiling: the same minibatch steps in 1 process and in 2 independent
   processes at once (no Dask, no averaging): what 2 cores give at best, the
   peer E(2) is measured against.
2. Recall: ``run_recall_job`` over a probe set (1M probes by default) on 1 and 2
   workers; the throughput ratio, the median over pairs of jobs run back to back on
   both clusters kept up (``--recall-repeat`` pairs). Its ceiling: the same recall
   tasks in 1 process and, split in halves, in 2 independent processes at once (no
   Dask).

Run: ``.venv/bin/python benchmarks/bench_distributed.py [--quick] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

# One BLAS thread in every process, the worker processes included (they inherit it).
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import dask  # noqa: E402
import numpy as np  # noqa: E402
from distributed import Client  # noqa: E402

from flows.cluster import dask_client  # noqa: E402
from flows.datasets import write_dataset  # noqa: E402
from nnpipe.core.hopfield import HopfieldNetwork  # noqa: E402
from nnpipe.core.mlp import MLPRegressor  # noqa: E402
from nnpipe.data import ParquetDataset, TrainValidationSplit, fit_scalers  # noqa: E402
from nnpipe.data.partition_io import read_patterns  # noqa: E402
from nnpipe.data.recall_job import run_recall_job  # noqa: E402
from nnpipe.training import train_distributed  # noqa: E402
from nnpipe.training.distributed import DEFAULT_LOCAL_STEPS  # noqa: E402


def _warm() -> None:
    # A real cluster has run tasks before: the task modules are imported.
    import nnpipe.data.recall_job  # noqa: F401
    import nnpipe.training.shares  # noqa: F401


def cluster(n_workers: int) -> tuple[contextlib.ExitStack, Client]:
    """nnpipe's own local cluster of ``n_workers`` single-threaded worker processes."""
    stack = contextlib.ExitStack()
    client = stack.enter_context(dask_client(n_workers=n_workers, processes=True))
    client.wait_for_workers(n_workers)
    client.run(_warm)
    return stack, client


def _steps(hidden: tuple, batch: int, steps: int, start, seconds) -> None:
    """``steps`` minibatch steps of the benchmark's model on random rows; wall seconds out."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(batch * 64, 8)).astype(np.float32)
    y = np.tanh(X.sum(axis=1))
    model = MLPRegressor(hidden_layer_sizes=hidden, batch_size=batch, random_state=0)
    model.n_threads = 1
    model.partial_fit(X[:batch], y[:batch])
    start.wait()
    t = time.perf_counter()
    for k in range(steps):
        s = (k % 64) * batch
        model.partial_fit(X[s : s + batch], y[s : s + batch])
    seconds.put(time.perf_counter() - t)


def _race(target, per_process: list[tuple], warm_seconds: float) -> list[float]:
    """Spawn a process per argument tuple, let them warm up, start them at once; their seconds.

    ``target(*args, start, seconds)`` waits for the ``start`` event, then puts the
    seconds its work took on the ``seconds`` queue.
    """
    ctx = multiprocessing.get_context("spawn")
    start, seconds = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, start, seconds)) for args in per_process]
    for p in procs:
        p.start()
    time.sleep(warm_seconds)  # every process has imported and warmed up
    start.set()
    times = [seconds.get() for _ in procs]
    for p in procs:
        p.join()
    return times


def ceiling(hidden: tuple, batch: int, steps: int = 300) -> float:
    """Steps/s of 2 independent processes over 2x those of 1: the 2-core ceiling of E(2)."""
    rates = {n: n * steps / max(_race(_steps, [(hidden, batch, steps)] * n, 3.0)) for n in (1, 2)}
    return rates[2] / (2 * rates[1])


def train_run(
    setup: dict, n_workers: int, local_steps: int, epochs: int, seed: int = 0
) -> list[dict]:
    """Per-epoch (seconds since the call, val_loss, compute and outside seconds)."""
    stack, client = cluster(n_workers)
    curve: list[dict] = []
    try:
        start = time.perf_counter()

        def on_epoch(metrics: dict) -> None:
            curve.append({**metrics, "elapsed": time.perf_counter() - start})

        model = MLPRegressor(
            hidden_layer_sizes=setup["hidden"], batch_size=setup["batch"], random_state=seed
        )
        train_distributed(
            model, setup["dataset"], workers=n_workers, client=client, local_steps=local_steps,
            epochs=epochs, split=setup["split"], x_scaler=setup["x_scaler"],
            y_scaler=setup["y_scaler"], early_stopping=False, callback=on_epoch,
        )  # fmt: skip
    finally:
        stack.close()
    return curve


def time_to(curve: list[dict], target: float) -> float | None:
    return next((m["elapsed"] for m in curve if m["val_loss"] <= target), None)


def epoch_seconds(curve: list[dict]) -> float:
    """Median seconds of the epochs after the first (which also starts the reads), if any."""
    return statistics.median(m["epoch_seconds"] for m in (curve[1:] or curve))


def outside_share(curve: list[dict], until: float) -> float:
    """Share of the time up to ``until`` not spent in the slowest worker's round tasks."""
    done = [m for m in curve if m["elapsed"] <= until + 1e-9]
    compute = sum(m["compute_seconds"] for m in done)
    return 1.0 - compute / until


def bench_training(args, root: Path) -> None:
    path = write_dataset(
        "regression", root / "reg", n_rows=args.rows, n_features=8,
        rows_per_partition=args.rows_per_partition,
    )["path"]  # fmt: skip
    dataset = ParquetDataset(path, targets="y")
    split = TrainValidationSplit(0.2)
    x_scaler, y_scaler = fit_scalers(dataset, subset="train", split=split)
    setup = {
        "dataset": dataset, "split": split, "x_scaler": x_scaler, "y_scaler": y_scaler,
        "hidden": tuple(args.hidden), "batch": args.batch,
    }  # fmt: skip
    print(
        f"training: {args.rows} rows x 8 features, MLP 8-{'-'.join(map(str, args.hidden))}-1, "
        f"batch {args.batch} per worker, float32, Adam"
    )
    for h in args.local_steps:
        t1s, t2s, shares, speedups = [], [], [], []
        for seed in range(args.repeat):  # a seed per repeat: the epochs needed vary
            one = train_run(setup, 1, h, args.target_epoch, seed)
            target = one[-1]["val_loss"]
            two = train_run(setup, 2, h, args.target_epoch * 2, seed)
            t1, t2 = one[-1]["elapsed"], time_to(two, target)
            t1s.append(t1)
            # Epochs after the first (which also reads the shares): seconds per epoch.
            speedups.append(epoch_seconds(one) / epoch_seconds(two))
            if t2 is None:
                print(f"  H={h}: 2 workers did not reach {target:.4f} in {len(two)} epochs")
                continue
            t2s.append(t2)
            shares.append(outside_share(two, t2))
            epochs2 = next(m["epoch"] for m in two if m["val_loss"] <= target)
            print(
                f"  H={h} ({two[0]['local_steps']} used): target val_loss {target:.4f}: "
                f"1 worker {t1:.1f} s "
                f"({args.target_epoch} epochs), 2 workers {t2:.1f} s ({epochs2} epochs)"
            )
        if t2s:
            t1, t2 = statistics.median(t1s), statistics.median(t2s)
            print(
                f"  H={h}: median T1 {t1:.1f} s, T2 {t2:.1f} s, E(2) = T1/(2 T2) = "
                f"{t1 / (2 * t2):.2f}; outside worker compute (2 workers): "
                f"{100 * statistics.median(shares):.0f}%; epoch time 1 worker / 2 workers "
                f"{statistics.median(speedups):.2f}"
            )
    peer = ceiling(tuple(args.hidden), args.batch)
    print(
        f"  ceiling: the same steps in 2 independent processes run {2 * peer:.2f}x one "
        f"process's steps/s: E(2) <= {peer:.2f} on this machine for any data-parallel scheme"
    )


def _recall_parts(network, patterns, parts, out: str, start, seconds) -> None:
    """Recall ``parts`` (after one partition to warm up) once ``start`` is set; seconds out."""
    from dataclasses import replace

    from nnpipe.data.recall_job import recall_partition

    def run(part) -> None:
        # The same task a worker runs, into a scratch file of this process.
        recall_partition(network, patterns, replace(part, output=f"{out}/{part.key}"), "ceiling")

    Path(out).mkdir(parents=True, exist_ok=True)
    run(parts[0])
    start.wait()
    t = time.perf_counter()
    for part in parts:
        run(part)
    seconds.put(time.perf_counter() - t)


def recall_ceiling(network, patterns, probes: Path, out: Path) -> float:
    """Probes/s of 2 independent processes over 2x those of 1, each running the recall tasks.

    No Dask: the same partitions, split in two halves, in 2 processes started alike
    (one BLAS thread, Dask's malloc setting for worker processes), against all of them
    in 1 process. What 2 cores give at best, the peer the 2-worker ratio is set against.
    """
    from nnpipe.data.recall_job import plan_partitions

    plan = plan_partitions(probes, out)
    env = dask.config.get("distributed.nanny.pre-spawn-environ")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items() if v is not None})
    rates = {}
    try:
        for n in (1, 2):
            halves = [(network, patterns, plan[i::n], str(out / f"p{i}")) for i in range(n)]
            rates[n] = len(plan) / max(_race(_recall_parts, halves, 4.0))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return rates[2] / rates[1]


def recall_rate(client: Client, network, patterns, probes: Path, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    summary = run_recall_job(network, patterns, probes, out, client=client)
    return summary.n_probes / (time.perf_counter() - start)


def bench_recall(args, root: Path) -> None:
    data = root / "hopfield"
    write_dataset(
        "hopfield", data, n_rows=args.probes, n_neurons=100, n_patterns=6,
        rows_per_partition=args.probes // 20,
    )  # fmt: skip
    patterns = read_patterns(data)
    network = HopfieldNetwork(rule="hebbian", random_state=0).fit(patterns)
    rates: dict[int, list[float]] = {1: [], 2: []}
    # Both clusters stay up and their jobs alternate (1-2, 2-1, ...): the machine's
    # speed drifts by 20% within a minute on shared cores, and a ratio of two runs
    # seconds apart is measured at about the same speed.
    clusters = {n: cluster(n) for n in (1, 2)}
    try:
        for k in range(args.recall_repeat):
            for n in (1, 2) if k % 2 == 0 else (2, 1):
                client = clusters[n][1]
                rates[n].append(
                    recall_rate(client, network, patterns, data / "probes", root / "out")
                )
    finally:
        for stack, _ in clusters.values():
            stack.close()
    peers = [
        recall_ceiling(network, patterns, data / "probes", root / "ceiling")
        for _ in range(args.repeat)
    ]
    r1, r2 = statistics.median(rates[1]), statistics.median(rates[2])
    pairs = [b / a for a, b in zip(rates[1], rates[2], strict=True)]
    print(
        f"recall: {args.probes} probes x 100 neurons in 20 partitions: 1 worker {r1:,.0f} "
        f"probes/s, 2 workers {r2:,.0f} probes/s (medians of {args.recall_repeat}); ratio of "
        f"each pair of runs {' '.join(f'{p:.2f}' for p in pairs)}: "
        f"median {statistics.median(pairs):.2f}"
    )
    print(
        f"  ceiling: the same recall tasks in 2 independent processes run "
        f"{' '.join(f'{p:.2f}' for p in peers)}x one process's probes/s (no Dask), "
        f"median {statistics.median(peers):.2f}"
    )


def local_steps(text: str) -> int | str:
    return text if text == "auto" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, one repeat")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rows-per-partition", type=int, default=25_000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--target-epoch", type=int, default=1)
    parser.add_argument("--local-steps", type=local_steps, nargs="+", default=[DEFAULT_LOCAL_STEPS])
    parser.add_argument("--probes", type=int, default=1_000_000)
    parser.add_argument("--recall-repeat", type=int, default=9, help="pairs of recall jobs")
    parser.add_argument("--skip", choices=["training", "recall"])
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.rows, args.probes, args.hidden = 1, 100_000, 200_000, [64, 64]
        args.recall_repeat = 1
        args.rows_per_partition = 5_000
    print(f"{os.cpu_count()} CPUs, numpy {np.__version__}, one BLAS thread per worker")
    root = Path(tempfile.mkdtemp(prefix="nnpipe-bench-distributed-"))
    try:
        if args.skip != "training":
            bench_training(args, root)
        if args.skip != "recall":
            bench_recall(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
