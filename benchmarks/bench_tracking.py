"""Tracking overhead: a 200-epoch training run tracked in MLflow vs the same run untracked.

Both runs execute the identical streaming loop (minibatch ``partial_fit``, a
validation loss, ``record_epoch``) on the same data and seed; the tracked one also
starts a run on an embedded SQLite store (environment info, git commit), logs the
flattened parameters, sends per-epoch metrics through the batched epoch callback,
logs final metrics, the config JSON and a loss-curve PNG and ends the run. The
tracker makes its MLflow calls in the training thread, synchronously, so a call
returns once its write is stored.

Each round runs the untracked and the tracked loop once, in alternating order; the
tracked run's wall time over the untracked run of the same round is a paired ratio,
and the median of those ratios is reported. Wall time swings widely on a shared
machine, so the paired CPU-time ratio and the time the training thread spent
blocked inside tracking calls are printed too. The fixed cost per run is a
one-epoch tracked run minus a one-epoch untracked run. The pyfunc model logging
(once per run, independent of the number of epochs) and importing MLflow (once per
process) are timed separately.

Earlier, three ways of making the calls were compared in one run (quiet machine,
commit 5f93003). On ``--rows 20000`` (6.5 s untracked) the wall ratios were:
in-process synchronous 1.053, MLflow's asynchronous logging 1.067, a writer process
1.032; none within 1.02 on a run that short, fixed cost ~0.09 s each. On
``--rows 80000`` (~26 s untracked, the size of a real run) in-process was 0.959
(middle half 0.957-0.987, training thread blocked 0.22 s, 0.85 % of the run,
fixed cost 0.081 s) and the writer process 0.974, both within the target (ratio
<= 1.02, fixed cost <= 0.5 s). The simplest design, in-process, was kept.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        .venv/bin/python benchmarks/bench_tracking.py --rows 80000
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
        n_iter_no_change=config["epochs"] + 1,  # run all epochs, tracked or not
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
    """Wall and process cpu of the loop alone (same tuple shape as ``tracked``)."""
    t0, c0 = time.perf_counter(), time.process_time()
    train(data, config)
    wall = time.perf_counter() - t0
    return wall, time.process_time() - c0, 0.0, 0.0


def tracked(data, config, uri):
    """Wall, process cpu, seconds inside epoch callbacks, inside other tracking calls."""
    t0, c0 = time.perf_counter(), time.process_time()
    watch, epochs = Stopwatch(), Stopwatch()
    tracker = watch.wrap(MlflowTracker)("bench-tracking", tracking_uri=uri)
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
    watch.wrap(tracker.end_run)("FINISHED")  # flushes the epoch metrics; stored on return
    wall = time.perf_counter() - t0
    return wall, time.process_time() - c0, epochs.seconds, watch.seconds


def model_logging_seconds(data, config, uri, workdir: Path) -> float:
    X, y, _, _ = data
    scaler = StandardScaler().fit(X)
    model = MLPRegressor(hidden_layer_sizes=config["hidden_layer_sizes"], max_iter=5)
    model.fit(scaler.transform(X), y)
    model.save(workdir / "network.npz")
    scaler.save(workdir / "scaler.npz")
    tracker = MlflowTracker("bench-tracking-model", tracking_uri=uri)
    with tracker.run("model"):
        t0 = time.perf_counter()
        tracker.log_model(
            workdir / "network.npz", scaler_path=workdir / "scaler.npz", input_example=X[:3]
        )
        return time.perf_counter() - t0


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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fixed-repeats", type=int, default=3, help="one-epoch runs per round")
    return parser.parse_args()


def measure(args: argparse.Namespace, config: dict):
    """Paired full runs, one-epoch fixed costs and the model logging time."""
    data = make_data(args.rows, 8)
    one_epoch = {**config, "epochs": 1}
    plain: list[tuple] = []
    runs: list[tuple] = []
    fixed: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        MlflowTracker("bench-tracking", tracking_uri=uri).experiment_id  # noqa: B018
        untracked(data, {**config, "epochs": 3})  # warm-up of both paths
        tracked(data, {**config, "epochs": 3}, uri)
        for round_ in range(args.repeats):
            if round_ % 2:
                runs.append(tracked(data, config, uri))
                plain.append(untracked(data, config))
            else:
                plain.append(untracked(data, config))
                runs.append(tracked(data, config, uri))
            for _ in range(args.fixed_repeats):
                base = untracked(data, one_epoch)[0]
                fixed.append(tracked(data, one_epoch, uri)[0] - base)
        model_seconds = model_logging_seconds(data, config, uri, Path(tmp))
    return plain, runs, fixed, model_seconds


def main() -> None:
    args = parse_args()
    config = {
        "hidden_layer_sizes": (32, 32),
        "batch_size": 64,
        "epochs": args.epochs,
        "seed": 0,
        "data": {"rows": args.rows, "features": 8},
    }
    plain, runs, fixed, model_seconds = measure(args, config)
    import_seconds = statistics.median(mlflow_import_seconds() for _ in range(3))

    print(f"{args.epochs}-epoch run, {args.rows} rows x 8 features, MLP (32, 32), batch 64;")
    print(f"{args.repeats} rounds (alternating order), medians; ratios paired with the")
    print("round's untracked run. wall = until the run's end is stored; cpu = process cpu.")
    p_wall, p_cpu = (statistics.median(r[k] for r in plain) for k in (0, 1))
    wall, cpu, in_epochs, in_rest = (statistics.median(r[k] for r in runs) for k in range(4))
    walls = [t[0] / p[0] for p, t in zip(plain, runs, strict=True)]
    cpus = [t[1] / p[1] for p, t in zip(plain, runs, strict=True)]
    print(f"  untracked   wall {p_wall:7.2f} s  cpu {p_cpu:7.2f} s")
    print(
        f"  in-process  wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
        f"blocked in epoch callbacks {in_epochs:.3f} s, in other calls {in_rest:.3f} s"
    )
    print(
        f"              wall ratio {statistics.median(walls):.4f} ({spread(walls)}); "
        f"cpu ratio {statistics.median(cpus):.4f} ({spread(cpus)})"
    )
    print(
        f"              blocked {100 * (in_epochs + in_rest) / p_wall:.2f} % of the untracked "
        f"wall; fixed cost per run {statistics.median(fixed):.3f} s"
    )
    print("  wall runs untracked   " + ", ".join(f"{r[0]:.2f}" for r in plain))
    print("  wall runs in-process  " + ", ".join(f"{r[0]:.2f}" for r in runs))
    print(f"  importing MLflow's client (once per process): {import_seconds:.2f} s")
    print(f"  pyfunc model logging (once per run, not per epoch): {model_seconds:.2f} s")


if __name__ == "__main__":
    main()
