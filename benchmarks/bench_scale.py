"""Memory at scale: peak RSS per process of `nnpipe train --workers 2` and `nnpipe recall`.

1. train: one epoch of ``nnpipe train --workers 2`` on a LARGE-row regression
   dataset (8 features) against the same command on a BASE-row one (10x smaller
   by default: 100M vs 10M rows); the target is peak RSS per process within 1.2x.
2. recall: ``nnpipe recall`` on LARGE-probe vs BASE-probe Hopfield datasets
   (10M vs 1M probes by default): flat RSS.

Each command runs as a user runs it (its own Prefect server, local Dask cluster,
SQLite MLflow store, in a fresh directory); every process of its tree is sampled
every 0.2 s (the kernel's peak RSS, VmHWM) and reported by role (driver, Dask workers, others).
The datasets are written partition by partition with ``nnpipe make-data`` under
``--data`` and kept for the next run (100M rows take ~3.6 GB).

    python benchmarks/bench_scale.py --data /path/with/space            # full
    python benchmarks/bench_scale.py --data /tmp/s --rows 1000000 2000000 \\
        --probes 100000 200000                                           # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

NNPIPE = [sys.executable, "-c", "import sys; from nnpipe.cli import main; sys.exit(main())"]
MB = 1 << 20


def role(proc: psutil.Process, driver: int) -> str:
    if proc.pid == driver:
        return "driver"
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    if "multiprocessing" in cmd and "spawn" in cmd:
        return "dask-worker"
    if "prefect" in cmd or "uvicorn" in cmd:
        return "prefect-server"
    return "other"


def peak_rss(proc: psutil.Process) -> int:
    """The kernel's high-water mark of the process's RSS (VmHWM), else its RSS now."""
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return proc.memory_info().rss


def sample(proc: subprocess.Popen, peaks: dict, stop: threading.Event) -> None:
    """Peak RSS (bytes) per pid of ``proc``'s tree, with its role, until ``stop``."""
    root = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        for p in tree:
            try:
                rss = peak_rss(p)
            except (psutil.Error, OSError):
                continue
            name, peak = peaks.get(p.pid, (None, 0))
            peaks[p.pid] = (name or role(p, proc.pid), max(peak, rss))
        stop.wait(0.2)


def run(args: list[str], cwd: Path) -> dict:
    """Run ``nnpipe args`` in ``cwd``; seconds, exit code, JSON result, peak RSS by role."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PREFECT_API_URL", None)
    peaks: dict = {}
    stop = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*NNPIPE, *args, "--json"], cwd=cwd, env=env, stdout=subprocess.PIPE, text=True
    )
    watcher = threading.Thread(target=sample, args=(proc, peaks, stop), daemon=True)
    watcher.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"nnpipe {' '.join(args)} exited {proc.returncode}")
    by_role: dict[str, list[int]] = {}
    for name, peak in peaks.values():
        by_role.setdefault(name, []).append(peak)
    result = json.loads(out[out.index("{") :])
    return {"seconds": seconds, "result": result, "rss": by_role}


def make(kind: str, path: Path, n: int, per_partition: int) -> None:
    if (path / "_SUCCESS").exists() or (kind == "regression" and path.exists()):
        return
    extra = ["--neurons", "100", "--patterns", "6"] if kind == "hopfield" else ["--features", "8"]
    subprocess.run(
        [*NNPIPE, "make-data", kind, str(path), "--rows", str(n),
         "--rows-per-partition", str(per_partition), "--overwrite", *extra],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def show(label: str, runs: dict[int, dict], roles: list[str]) -> None:
    (n_base, base), (n_large, large) = sorted(runs.items())
    for r in roles:
        b, g = max(base["rss"].get(r, [0])), max(large["rss"].get(r, [0]))
        if b and g:
            print(
                f"  {label} {r:15s} peak RSS {b / MB:7.0f} MB ({n_base:,}) -> "
                f"{g / MB:7.0f} MB ({n_large:,}): ratio {g / b:.2f}"
            )
    print(
        f"  {label} wall {base['seconds']:.0f} s ({n_base:,}) vs {large['seconds']:.0f} s "
        f"({n_large:,})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="where datasets are kept")
    parser.add_argument("--rows", type=int, nargs=2, default=[10_000_000, 100_000_000])
    parser.add_argument("--rows-per-partition", type=int, default=1_000_000)
    parser.add_argument("--probes", type=int, nargs=2, default=[1_000_000, 10_000_000])
    parser.add_argument("--probes-per-partition", type=int, default=100_000)
    parser.add_argument("--skip", choices=["train", "recall"])
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB")
    if args.skip != "train":
        runs = {}
        for n in args.rows:
            data = args.data / f"reg-{n}"  # partitions of --rows-per-partition rows
            make("regression", data, n, args.rows_per_partition)
            work = Path(tempfile.mkdtemp(prefix="nnpipe-scale-"))
            try:
                runs[n] = run(
                    ["train", "--dataset", str(data), "--epochs", "1", "--workers", "2",
                     "--workdir", str(work)], work,
                )  # fmt: skip
            finally:
                shutil.rmtree(work, ignore_errors=True)
            r = runs[n]["result"]["summary"]
            epoch = r["history"][-1]
            print(
                f"train {n:,} rows: {runs[n]['seconds']:.0f} s in all, epoch "
                f"{epoch['epoch_seconds']:.0f} s ({epoch['samples_per_s']:,.0f} rows/s), "
                f"r2 {r['r2']:.4f}, workers {r['workers']}"
            )
        show("train", runs, ["driver", "dask-worker", "prefect-server"])
    if args.skip != "recall":
        runs = {}
        for n in args.probes:
            # The same partition size for both: a recall task holds one partition.
            data = args.data / f"hop-{n}-{args.probes_per_partition}"
            make("hopfield", data, n, args.probes_per_partition)
            work = Path(tempfile.mkdtemp(prefix="nnpipe-scale-"))
            try:
                runs[n] = run(
                    ["recall", "--dataset", str(data), "--output", str(work / "out"),
                     "--workdir", str(work)], work,
                )  # fmt: skip
            finally:
                shutil.rmtree(work, ignore_errors=True)
            print(f"recall {n:,} probes: {runs[n]['seconds']:.0f} s")
        show("recall", runs, ["driver", "dask-worker", "prefect-server"])


if __name__ == "__main__":
    main()
