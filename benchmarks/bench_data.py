"""Out-of-core data path against its peers, each measured in a fresh subprocess.

1. epoch: one training epoch streamed from Parquet (train_out_of_core) vs the
   same batches fed from memory to partial_fit (target ratio <= 1.15); then the
   second epoch of a two-epoch run the same way (its first reads overlap the
   previous epoch). CPU seconds of all threads are shown next to wall time: the
   reads are hidden by running beside training, they are not free, so on a
   machine with no idle core the wall ratio moves towards the CPU ratio.
2. rss: peak RSS of one streamed epoch on a dataset 10x larger (>= 2 GB on disk
   in the full run) vs the base one (target ratio <= 1.2).
3. scaler: fit_scalers throughput vs a raw pyarrow scan of the same columns
   (target >= 70%).
4. s3: one streamed epoch (prefetch on, as train_out_of_core runs it) from a
   local S3 server (moto's, on 127.0.0.1) vs from the same files on local disk,
   with the bytes fetched from the store during the epoch (counted where s3fs
   fetches them) against the bytes of the files: each byte should be read once.

    python benchmarks/bench_data.py            # full: base ~215 MB, large ~2.2 GB
    python benchmarks/bench_data.py --quick    # small version (~1 minute)

Datasets are written under a temporary directory (default /tmp) and removed at
the end. Prints medians of --repeat runs (the two sides interleaved) and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_FEATURES = 32
HIDDEN = (64, 64)
BATCH = 256


def _threads_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _model():
    from nnpipe.core.mlp import MLPRegressor

    return MLPRegressor(hidden_layer_sizes=HIDDEN, batch_size=BATCH, random_state=0, n_threads=1)


def _dataset(path: str):
    from nnpipe.data import ParquetDataset

    return ParquetDataset(path, targets="y")


# -- children (one measurement each, in a fresh interpreter) ---------------------------------


def child_epoch(path: str, mode: str) -> dict:
    """Seconds for one epoch, streamed from Parquet or from batches already in memory."""
    from nnpipe.data import fit_scalers, iter_minibatches
    from nnpipe.training import train_out_of_core

    ds = _dataset(path)
    xs, ys = fit_scalers(ds)
    model = _model().set_target_scaler(ys)
    if mode == "stream":
        t0, c0 = time.perf_counter(), time.process_time()
        train_out_of_core(model, ds, epochs=1, batch_size=BATCH, x_scaler=xs, restore_best=False)
        seconds = time.perf_counter() - t0
    else:
        batches = list(iter_minibatches(ds, BATCH, x_scaler=xs))  # the same batches, in memory
        t0, c0 = time.perf_counter(), time.process_time()
        losses = 0.0
        n = 0
        for Xb, yb in batches:
            model.partial_fit(Xb, yb)
            losses += model.batch_loss_ * len(Xb)
            n += len(Xb)
        model.record_epoch(losses / n)
        seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - c0,  # all threads: reading is hidden, not free
        "rows": ds.n_rows,
        "weights_sum": float(model.coefs_[0].sum()),
    }


def child_steady(path: str, mode: str) -> dict:
    """Seconds of the second of two epochs: the reads of a run's first epoch start cold,
    later ones start while the previous epoch trains."""
    from nnpipe.data import fit_scalers, iter_minibatches
    from nnpipe.training import train_out_of_core

    ds = _dataset(path)
    xs, ys = fit_scalers(ds)
    model = _model().set_target_scaler(ys)
    if mode == "stream":
        history: list[dict] = []
        cpu_marks: list[float] = []

        def callback(metrics: dict) -> None:
            history.append(metrics)
            cpu_marks.append(time.process_time())

        train_out_of_core(
            model,
            ds,
            epochs=2,
            batch_size=BATCH,
            x_scaler=xs,
            restore_best=False,
            callback=callback,
        )
        seconds, cpu = history[1]["epoch_seconds"], cpu_marks[1] - cpu_marks[0]
    else:
        epochs = [list(iter_minibatches(ds, BATCH, epoch=e, x_scaler=xs)) for e in (0, 1)]
        for batches in epochs:
            t0, c0 = time.perf_counter(), time.process_time()
            losses = 0.0
            n = 0
            for Xb, yb in batches:
                model.partial_fit(Xb, yb)
                losses += model.batch_loss_ * len(Xb)
                n += len(Xb)
            model.record_epoch(losses / n)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu_seconds": cpu, "weights_sum": float(model.coefs_[0].sum())}


def child_rss(path: str) -> dict:
    """Peak RSS (MB) of fitting scalers + one streamed training epoch."""
    from nnpipe.data import fit_scalers
    from nnpipe.training import train_out_of_core

    ds = _dataset(path)
    xs, ys = fit_scalers(ds)
    model = _model().set_target_scaler(ys)
    t0 = time.perf_counter()
    train_out_of_core(model, ds, epochs=1, batch_size=1024, x_scaler=xs, restore_best=False)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "peak_rss_mb": peak_kb / 1024,
        "seconds": time.perf_counter() - t0,
        "rows": ds.n_rows,
        "disk_mb": ds.size_bytes / 2**20,
    }


def child_scaler(path: str, mode: str) -> dict:
    """Rows per second of fit_scalers, or of a raw pyarrow scan of the same columns."""
    import dask
    import pyarrow.dataset as pads

    from nnpipe.data import fit_scalers

    ds = _dataset(path)
    columns = ds.feature_names + ds.target_names
    # Warm-up outside the timing: the first Dask compute starts its thread pool and
    # imports scheduler modules; the scan's first read sets up pyarrow's thread pool.
    dask.compute(dask.delayed(len)([0]), scheduler="threads")
    pads.dataset(ds.partitions[0].path, format="parquet").to_table(columns=columns)
    t0 = time.perf_counter()
    if mode == "fit":
        fit_scalers(ds, "standard", "standard")
        rows = ds.n_rows
    else:
        rows = 0
        for batch in pads.dataset(path, format="parquet").to_batches(columns=columns):
            rows += batch.num_rows
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows_per_s": rows / seconds}


def child_s3epoch(path: str, mode: str) -> dict:
    """One streamed epoch from ``path`` (s3:// or local); bytes fetched from the store."""
    import s3fs

    from nnpipe.data import fit_scalers
    from nnpipe.training import train_out_of_core

    fetched = {"bytes": 0, "requests": 0}
    fetch = s3fs.core.S3File._fetch_range

    def counting(self, start, end):  # every ranged GET of an s3fs file passes here
        data = fetch(self, start, end)
        fetched["bytes"] += len(data)
        fetched["requests"] += 1
        return data

    s3fs.core.S3File._fetch_range = counting
    ds = _dataset(path)
    xs, ys = fit_scalers(ds)
    model = _model().set_target_scaler(ys)
    fetched.update(bytes=0, requests=0)  # the epoch's reads only
    t0, c0 = time.perf_counter(), time.process_time()
    train_out_of_core(model, ds, epochs=1, batch_size=BATCH, x_scaler=xs, restore_best=False)
    return {
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "fetched_bytes": fetched["bytes"],
        "requests": fetched["requests"],
        "file_bytes": ds.size_bytes,
        "files": ds.n_partitions,
        "weights_sum": float(model.coefs_[0].sum()),
    }


CHILDREN = {
    "epoch": child_epoch,
    "s3epoch": child_s3epoch,
    "steady": child_steady,
    "rss": child_rss,
    "scaler": child_scaler,
}


def run_child(kind: str, *args: str, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, *args],
        capture_output=True,
        text=True,
        env={**_threads_env(), **(env or {})},
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {kind} {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- parent -------------------------------------------------------------------------------


def write(path: Path, rows: int, rows_per_partition: int) -> float:
    from nnpipe.data import write_regression_dataset

    t0 = time.perf_counter()
    write_regression_dataset(
        path, rows, n_features=N_FEATURES, rows_per_partition=rows_per_partition, random_state=0
    )
    return time.perf_counter() - t0


def du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*.parquet")) / 2**20


def paired_medians(
    kind: str, repeat: int, path: str, modes: tuple[str, str], key: str, paths=None, env=None
):
    """Medians of ``repeat`` runs of two modes, interleaved (A B A B ...) so that load
    changes on a shared machine hit both sides alike. ``paths``: one path per mode."""
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(repeat):
        for mode in modes:
            runs[mode].append(run_child(kind, (paths or {}).get(mode, path), mode, env=env))
    return [statistics.median(r[key] for r in runs[m]) for m in modes], runs


def paired_medians_of(runs: dict[str, list[dict]], modes: tuple[str, str], key: str):
    """Medians of another figure of runs already made."""
    return [statistics.median(r[key] for r in runs[m]) for m in modes], runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small datasets (about a minute)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where datasets are written")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps(CHILDREN[kind](*rest)))
        return

    base_rows, per_part = (200_000, 25_000) if args.quick else (1_800_000, 100_000)
    work = Path(tempfile.mkdtemp(prefix="nnpipe-bench-", dir=args.tmp))
    try:
        base, large = work / "base", work / "large"
        secs = write(base, base_rows, per_part)
        print(
            f"base dataset: {base_rows:,} rows x {N_FEATURES} features, "
            f"{du_mb(base):.0f} MB on disk, written in {secs:.1f} s"
        )

        print(
            f"\n[epoch] MLP {N_FEATURES}-{'-'.join(map(str, HIDDEN))}-1, batch {BATCH}, "
            f"{base_rows:,} rows; median of {args.repeat}; cpu = all threads of the process"
        )
        for kind, title in (("epoch", "one epoch (cold start)"), ("steady", "2nd of 2 epochs")):
            (stream_s, memory_s), runs = paired_medians(
                kind, args.repeat, str(base), ("stream", "memory"), key="seconds"
            )
            (stream_c, memory_c), _ = paired_medians_of(runs, ("stream", "memory"), "cpu_seconds")
            same = runs["stream"][0]["weights_sum"] == runs["memory"][0]["weights_sum"]
            target = "   (target <= 1.15)" if kind == "epoch" else ""
            print(f"  {title}:")
            print(f"    streamed from Parquet : {stream_s:8.2f} s   cpu {stream_c:6.2f} s")
            print(f"    same batches in memory: {memory_s:8.2f} s   cpu {memory_c:6.2f} s")
            print(
                f"    ratio stream/memory   : {stream_s / memory_s:8.3f}{target}"
                f"   cpu {stream_c / memory_c:.3f}   identical weights: {same}"
            )

        (fit_rps, scan_rps), _ = paired_medians(
            "scaler", args.repeat, str(base), ("fit", "scan"), key="rows_per_s"
        )
        print(f"\n[scaler] {N_FEATURES + 1} columns, {base_rows:,} rows; median of {args.repeat}")
        print(f"  fit_scalers (one Dask pass): {fit_rps / 1e6:8.2f} M rows/s")
        print(f"  raw pyarrow scan           : {scan_rps / 1e6:8.2f} M rows/s")
        print(f"  ratio fit/scan             : {fit_rps / scan_rps:8.1%}   (target >= 70%)")
        s3_case(base, args.repeat, work)

        secs = write(large, base_rows * 10, per_part)
        print(
            f"\nlarge dataset: {base_rows * 10:,} rows, {du_mb(large):.0f} MB on disk, "
            f"written in {secs:.1f} s"
        )
        small_rss = run_child("rss", str(base))
        large_rss = run_child("rss", str(large))
        print("[rss] peak RSS of fit_scalers + one streamed epoch (batch 1024), one run each")
        for name, r in (("base", small_rss), ("large", large_rss)):
            print(
                f"  {name:5s}: {r['disk_mb']:7.0f} MB on disk, {r['rows']:>11,} rows, "
                f"peak RSS {r['peak_rss_mb']:7.0f} MB, epoch {r['seconds']:.1f} s"
            )
        ratio = large_rss["peak_rss_mb"] / small_rss["peak_rss_mb"]
        print(f"  ratio large/base: {ratio:.3f}   (target <= 1.2)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def s3_case(base: Path, repeat: int, work: Path) -> None:
    """[s3] the streamed epoch from moto's S3 server on 127.0.0.1 vs from local files."""
    import s3fs

    from tests.s3_server import start_s3_server

    server = start_s3_server(work)
    try:
        bucket = server.new_bucket()
        env = server.environment()
        fs = s3fs.S3FileSystem(key=server.key, secret=server.secret, endpoint_url=server.endpoint)
        t0 = time.perf_counter()
        fs.put(str(base), f"{bucket}/base", recursive=True)
        print(
            f"\n[s3] base dataset uploaded to moto's S3 server in {time.perf_counter() - t0:.1f} s"
        )
        paths = {"s3": f"s3://{bucket}/base", "local": str(base)}
        (s3_s, local_s), runs = paired_medians(
            "s3epoch", repeat, "", ("s3", "local"), key="seconds", paths=paths, env=env
        )
        (s3_c, local_c), _ = paired_medians_of(runs, ("s3", "local"), "cpu_seconds")
        r = runs["s3"][0]
        same = r["weights_sum"] == runs["local"][0]["weights_sum"]
        print(f"  one streamed epoch (prefetch on), median of {repeat}:")
        print(f"    from s3:// (127.0.0.1)  : {s3_s:8.2f} s   cpu {s3_c:6.2f} s")
        print(f"    from local files        : {local_s:8.2f} s   cpu {local_c:6.2f} s")
        print(f"    ratio s3/local          : {s3_s / local_s:8.3f}   identical weights: {same}")
        fetched = [x["fetched_bytes"] for x in runs["s3"]]
        print(
            f"    bytes fetched per epoch : {statistics.median(fetched) / 2**20:8.1f} MB in "
            f"{r['requests']} GETs for {r['files']} files of {r['file_bytes'] / 2**20:.1f} MB "
            f"(fetched/file bytes {statistics.median(fetched) / r['file_bytes']:.3f})"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
