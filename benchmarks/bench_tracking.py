"""Tracking overhead: a 200-epoch training run tracked in MLflow vs the same run untracked.

Both variants run the identical streaming loop (minibatch ``partial_fit``, a
validation loss, ``record_epoch``) on the same data and seed; the tracked one also
starts a run on an embedded SQLite store (environment info, git commit), logs the
flattened parameters, sends per-epoch metrics through the batched epoch callback,
logs final metrics, the config JSON and a loss-curve PNG, and ends the run. The
variants alternate; medians are compared. The pyfunc model logging (a fixed cost per
run, independent of the number of epochs) is timed separately.

MLflow calls are made by nnpipe's tracking writer process, so the run returns as
soon as its writes are queued ("tracked" below: the figure the target is about).
"stored" is the time until ``tracker.wait()`` confirms everything is in the store;
each tracked repeat waits for it before the next variant starts, so the writer's
tail never overlaps the next measurement. ``--inline`` makes the same calls in the
training process instead (``MlflowTracker(background=False)``), for comparison.

Wall time swings widely on a shared machine, so the process CPU time of each variant
and the time spent inside tracking calls are printed as well.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_tracking.py
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_tracking.py --inline
"""

from __future__ import annotations

import argparse
import statistics
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


def untracked(data, config):
    t0, c0 = time.perf_counter(), time.process_time()
    train(data, config)
    wall = time.perf_counter() - t0
    return wall, time.process_time() - c0, 0.0, wall


def tracked(data, config, uri, background=True):
    t0, c0 = time.perf_counter(), time.process_time()
    watch = Stopwatch()
    tracker = watch.wrap(MlflowTracker)("bench-tracking", tracking_uri=uri, background=background)
    watch.wrap(tracker.start_run)("bench")
    watch.wrap(tracker.log_params)(config)
    watch.wrap(tracker.log_dict)(config, "config.json")
    model = train(data, config, watch.wrap(tracker.epoch_callback()))
    _, _, Xv, yv = data
    metrics = watch.wrap(regression_metrics)(yv, model.predict(Xv))
    watch.wrap(tracker.log_metrics)(metrics)
    watch.wrap(tracker.log_plot)(
        "plots/loss_curve.png", loss_curve_figure, model.loss_curve_, model.validation_loss_curve_
    )
    watch.wrap(tracker.end_run)("FINISHED")  # flushes the epoch metrics
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tracker.wait()  # everything stored before anything else is measured
    return wall, cpu, watch.seconds, time.perf_counter() - t0


def writer_cpu_seconds(tracker: MlflowTracker) -> float:
    """CPU seconds used so far by the tracking writer process (NaN without one or psutil)."""
    process = getattr(tracker.writer, "process", None)
    if process is None:
        return float("nan")
    try:
        import psutil
    except ImportError:
        return float("nan")
    times = psutil.Process(process.pid).cpu_times()
    return times.user + times.system


def model_logging_seconds(data, config, uri, workdir: Path, background: bool) -> float:
    X, y, _, _ = data
    scaler = StandardScaler().fit(X)
    model = MLPRegressor(hidden_layer_sizes=config["hidden_layer_sizes"], max_iter=5)
    model.fit(scaler.transform(X), y)
    model.save(workdir / "network.npz")
    scaler.save(workdir / "scaler.npz")
    tracker = MlflowTracker("bench-tracking-model", tracking_uri=uri, background=background)
    with tracker.run("model"):
        t0 = time.perf_counter()
        tracker.log_model(
            workdir / "network.npz", scaler_path=workdir / "scaler.npz", input_example=X[:3]
        )
        seconds = time.perf_counter() - t0
    tracker.wait()  # the run's end is stored before the store's directory is removed
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--inline", action="store_true", help="make the MLflow calls in the training process"
    )
    args = parser.parse_args()
    config = {
        "hidden_layer_sizes": (32, 32),
        "batch_size": 64,
        "epochs": args.epochs,
        "seed": 0,
        "data": {"rows": args.rows, "features": 8},
    }
    data = make_data(args.rows, 8)
    background = not args.inline
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        t0 = time.perf_counter()
        first = MlflowTracker("bench-tracking", tracking_uri=uri, background=background)
        first.experiment_id  # noqa: B018
        cold = time.perf_counter() - t0
        untracked(data, {**config, "epochs": 3})  # warm-up of both paths
        tracked(data, {**config, "epochs": 3}, uri, background)
        plain, logged, writer_cpu = [], [], []
        for _ in range(args.repeats):
            plain.append(untracked(data, config))
            before = writer_cpu_seconds(first)
            logged.append(tracked(data, config, uri, background))
            writer_cpu.append(writer_cpu_seconds(first) - before)
        model_seconds = model_logging_seconds(data, config, uri, Path(tmp), background)

    def med(rows, k):
        return statistics.median(r[k] for r in rows)

    p_wall, t_wall, t_stored = med(plain, 0), med(logged, 0), med(logged, 3)
    p_cpu, t_cpu = med(plain, 1), med(logged, 1)
    inside = med(logged, 2)
    where = "in the training process (--inline)" if args.inline else "by the writer process"
    print(f"{args.epochs}-epoch run, {args.rows} rows x 8 features, MLP (32, 32), batch 64;")
    print(f"MLflow calls made {where}; {args.repeats} alternating repeats, medians")
    print(f"  untracked wall {p_wall:8.3f} s   cpu {p_cpu:8.3f} s")
    print(f"  tracked   wall {t_wall:8.3f} s   cpu {t_cpu:8.3f} s   (run returns)")
    print(f"  stored    wall {t_stored:8.3f} s                  (tracker.wait() returns)")
    print(f"  wall ratio {t_wall / p_wall:.4f} ({100 * (t_wall - p_wall) / p_wall:+.2f} %)")
    print(f"  until stored {t_stored / p_wall:.4f} ({100 * (t_stored - p_wall) / p_wall:+.2f} %)")
    # Each tracked run against the untracked run just before it: slow drifts of a
    # shared machine cancel out of these.
    ratios = [t[0] / p[0] for p, t in zip(plain, logged, strict=True)]
    paired = statistics.median(ratios)
    paired_stored = statistics.median(t[3] / p[0] for p, t in zip(plain, logged, strict=True))
    print(f"  median of paired ratios {paired:.4f} (run returns), {paired_stored:.4f} (stored)")
    if len(ratios) >= 4:
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        print(f"  paired ratios' middle half {q1:.4f} .. {q3:.4f} (the machine's noise)")
    print(f"  cpu  ratio {t_cpu / p_cpu:.4f} ({100 * (t_cpu - p_cpu) / p_cpu:+.2f} %)")
    if background and all(c == c for c in writer_cpu):
        print(f"  writer process cpu per tracked run: {statistics.median(writer_cpu):.3f} s")
    print(
        f"  time inside tracking calls {inside:.3f} s = {100 * inside / p_wall:.2f} % "
        "of the untracked wall time"
    )
    print("  wall runs untracked: " + ", ".join(f"{r[0]:.2f}" for r in plain))
    print("  wall runs tracked:   " + ", ".join(f"{r[0]:.2f}" for r in logged))
    print(
        f"  one-time writer start + store creation + first connection: {cold:.2f} s "
        "(not in the medians)"
    )
    print(f"  pyfunc model logging (once per run, not per epoch): {model_seconds:.2f} s")


if __name__ == "__main__":
    main()
