"""Tracking overhead: a 200-epoch training run tracked in MLflow vs the same run untracked.

Every variant runs the identical streaming loop (minibatch ``partial_fit``, a
validation loss, ``record_epoch``) on the same data and seed; a tracked one also
starts a run on an embedded SQLite store (environment info, git commit), logs the
flattened parameters, sends per-epoch metrics through the batched epoch callback,
logs final metrics, the config JSON and a loss-curve PNG, ends the run and waits
until everything is stored. Two ways of making the MLflow calls are compared:

  writer      nnpipe's tracking writer process makes every call (the default)
  in-process  ``MlflowTracker(background=False)``: the same ``MlflowClient`` calls
              from the training thread, epoch metrics sent every ``flush_seconds``

(MLflow's own asynchronous logging, ``mlflow.config.enable_async_logging``, was a
third variant: its worker threads live in the training process and share its GIL;
it blocked the training thread half as long as the in-process variant but 4-5x as
long as the writer, at the same process cpu. See this file's git history.)

Each round runs the untracked loop and every variant once, in a rotating order; a
variant's ratio is its wall time (until stored) over the untracked run of the same
round, and the median of those paired ratios is reported. Wall time swings widely
on a shared machine, so the paired ratios of CPU time (this process, and with the
writer process's) and the time the training thread spent blocked inside tracking
calls are printed too: the blocked time is what the tracking takes from training.
The fixed cost per run is a one-epoch tracked run (until stored) minus a one-epoch
untracked run. The pyfunc model logging (once per run, independent of the number of
epochs) and importing MLflow (once per process) are timed separately.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        .venv/bin/python benchmarks/bench_tracking.py --rows 20000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nnpipe.core.mlp import MLPRegressor
from nnpipe.core.scalers import StandardScaler
from nnpipe.tracking import MlflowTracker, loss_curve_figure, regression_metrics


def make_data(n_rows: int, n_features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    w = rng.normal(size=n_features)
    y = np.tanh(X @ w) * 10.0 - 5.0 + rng.normal(0, 0.1, n_rows)
    cut = int(0.8 * n_rows)
    return X[:cut], y[:cut], X[cut:], y[cut:]


def train(data, config, callback=None):
    """The streaming loop a trainer runs; ``callback`` gets each epoch's metrics."""
    X, y, Xv, yv = data
    model = MLPRegressor(
        hidden_layer_sizes=config["hidden_layer_sizes"],
        batch_size=config["batch_size"],
        random_state=config["seed"],
        n_iter_no_change=config["epochs"] + 1,  # run all epochs in both variants
    )
    rng = np.random.default_rng(config["seed"])
    bs = config["batch_size"]
    for epoch in range(1, config["epochs"] + 1):
        t0 = time.perf_counter()
        order = rng.permutation(len(X))
        for start in range(0, len(X), bs):
            idx = order[start : start + bs]
            model.partial_fit(X[idx], y[idx])
        train_seconds = time.perf_counter() - t0
        train_loss = model.data_loss(X, y)
        val_loss = model.data_loss(Xv, yv)
        model.record_epoch(train_loss, val_loss)
        if callback is not None:
            callback(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "learning_rate": model.learning_rate_,
                    "samples_per_s": len(X) / train_seconds,
                    "epoch_seconds": time.perf_counter() - t0,
                }
            )
    return model


class Stopwatch:
    """Adds up the time spent inside tracking calls (a direct overhead measure)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


VARIANTS = {"writer": True, "in-process": False}  # name: MlflowTracker(background=...)


def untracked(data, config):
    t0, c0 = time.perf_counter(), time.process_time()
    train(data, config)
    wall = time.perf_counter() - t0
    return wall, time.process_time() - c0, 0.0, 0.0, wall


def tracked(data, config, uri, variant):
    """Wall, process cpu, seconds inside epoch callbacks, inside other calls, until stored."""
    background = VARIANTS[variant]
    t0, c0 = time.perf_counter(), time.process_time()
    watch, epochs = Stopwatch(), Stopwatch()
    tracker = watch.wrap(MlflowTracker)("bench-tracking", tracking_uri=uri, background=background)
    watch.wrap(tracker.start_run)("bench")
    watch.wrap(tracker.log_params)(config)
    watch.wrap(tracker.log_dict)(config, "config.json")
    model = train(data, config, epochs.wrap(tracker.epoch_callback()))
    _, _, Xv, yv = data
    metrics = watch.wrap(regression_metrics)(yv, model.predict(Xv))
    watch.wrap(tracker.log_metrics)(metrics)
    watch.wrap(tracker.log_plot)(
        "plots/loss_curve.png", loss_curve_figure, model.loss_curve_, model.validation_loss_curve_
    )
    watch.wrap(tracker.end_run)("FINISHED")  # flushes the epoch metrics
    wall = time.perf_counter() - t0
    tracker.wait()  # everything stored before anything else is measured
    cpu = time.process_time() - c0
    return wall, cpu, epochs.seconds, watch.seconds, time.perf_counter() - t0


def writer_cpu_seconds() -> float:
    """CPU seconds used so far by this process's tracking writer (0 without one)."""
    from nnpipe.tracking import writer

    if writer._shared is None:
        return 0.0
    import psutil

    times = psutil.Process(writer._shared.process.pid).cpu_times()
    return times.user + times.system


def model_logging_seconds(data, config, uri, workdir: Path) -> float:
    X, y, _, _ = data
    scaler = StandardScaler().fit(X)
    model = MLPRegressor(hidden_layer_sizes=config["hidden_layer_sizes"], max_iter=5)
    model.fit(scaler.transform(X), y)
    model.save(workdir / "network.npz")
    scaler.save(workdir / "scaler.npz")
    tracker = MlflowTracker("bench-tracking-model", tracking_uri=uri, background=False)
    with tracker.run("model"):
        t0 = time.perf_counter()
        tracker.log_model(
            workdir / "network.npz", scaler_path=workdir / "scaler.npz", input_example=X[:3]
        )
        seconds = time.perf_counter() - t0
    tracker.wait()  # the run's end is stored before the store's directory is removed
    return seconds


def mlflow_import_seconds() -> float:
    """Importing MLflow's client in a fresh interpreter (paid once per process)."""
    code = (
        "import time; t = time.perf_counter(); from mlflow import MlflowClient; "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def spread(ratios: list[float]) -> str:
    if len(ratios) < 4:
        return ""
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return f"middle half {q1:.4f} .. {q3:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fixed-repeats", type=int, default=3, help="one-epoch runs per round")
    args = parser.parse_args()
    config = {
        "hidden_layer_sizes": (32, 32),
        "batch_size": 64,
        "epochs": args.epochs,
        "seed": 0,
        "data": {"rows": args.rows, "features": 8},
    }
    one_epoch = {**config, "epochs": 1}
    data = make_data(args.rows, 8)
    names = ["untracked", *VARIANTS]
    full: dict[str, list] = {name: [] for name in names}
    fixed: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        MlflowTracker("bench-tracking", tracking_uri=uri, background=False).experiment_id  # noqa: B018
        untracked(data, {**config, "epochs": 3})  # warm-up of every path
        for variant in VARIANTS:
            tracked(data, {**config, "epochs": 3}, uri, variant)
        for round_ in range(args.repeats):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                if name == "untracked":
                    full[name].append(untracked(data, config))
                else:
                    before = writer_cpu_seconds()
                    row = tracked(data, config, uri, name)
                    full[name].append((*row, writer_cpu_seconds() - before))
            for _ in range(args.fixed_repeats):
                base = untracked(data, one_epoch)[0]
                for variant in VARIANTS:
                    fixed[variant].append(tracked(data, one_epoch, uri, variant)[4] - base)
        model_seconds = model_logging_seconds(data, config, uri, Path(tmp))
    import_seconds = statistics.median(mlflow_import_seconds() for _ in range(3))

    plain = full["untracked"]
    print(f"{args.epochs}-epoch run, {args.rows} rows x 8 features, MLP (32, 32), batch 64;")
    print(f"{args.repeats} rounds (rotating order), medians; ratios paired with the round's")
    print("untracked run. wall = until everything is stored (tracker.wait() returned);")
    print("cpu = this process's cpu time, +writer adds the writer process's.")
    p_wall, p_cpu = (statistics.median(r[k] for r in plain) for k in (0, 1))
    print(f"  untracked      wall {p_wall:7.2f} s  cpu {p_cpu:7.2f} s")
    for variant in VARIANTS:
        runs = full[variant]
        wall, cpu, in_epochs, in_rest, writer = (
            statistics.median(r[k] for r in runs) for k in (4, 1, 2, 3, 5)
        )
        walls = [t[4] / p[0] for p, t in zip(plain, runs, strict=True)]
        cpus = [t[1] / p[1] for p, t in zip(plain, runs, strict=True)]
        totals = [(t[1] + t[5]) / p[1] for p, t in zip(plain, runs, strict=True)]
        print(
            f"  {variant:<14} wall {wall:7.2f} s  cpu {cpu:7.2f} s (+writer {writer:.2f} s)  "
            f"blocked in epoch callbacks {in_epochs:.3f} s, in other calls {in_rest:.3f} s"
        )
        print(
            f"  {'':<14} wall ratio {statistics.median(walls):.4f} ({spread(walls)}); "
            f"cpu ratio {statistics.median(cpus):.4f} ({spread(cpus)}); "
            f"cpu+writer {statistics.median(totals):.4f}"
        )
        print(
            f"  {'':<14} epoch callbacks {100 * in_epochs / p_wall:.2f} % of the untracked wall; "
            f"fixed cost per run {statistics.median(fixed[variant]):.3f} s"
        )
    for name in names:
        print(f"  wall runs {name:<14} " + ", ".join(f"{r[4]:.2f}" for r in full[name]))
    print(f"  importing MLflow's client (once per process): {import_seconds:.2f} s")
    print(f"  pyfunc model logging (once per run, not per epoch): {model_seconds:.2f} s")


if __name__ == "__main__":
    main()
