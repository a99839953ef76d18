"""How fast ``nnpipe train --dataset DIR --epochs 1`` starts and ends, and where the time goes.

The command as a user runs it, with the embedded defaults (./mlflow.db in the
working directory, no PREFECT_API_URL): two runs in a fresh directory per repeat,
the first creating the MLflow store and starting the reused Prefect server, the
second (the one the target is about) finding both. The peer, run the same way:
a plain script that reads the same Parquet files with pyarrow, trains the same
network (64x64 tanh, Adam, batches of 256, one epoch) with scikit-learn's
MLPRegressor and logs it with ``mlflow.sklearn`` into its own SQLite store
(with MLflow's telemetry off, as nnpipe's commands run it).

Where the time goes, each measured on its own in a fresh process: Python with
the command's imports, an empty Prefect flow on the reused server and on
Prefect's temporary server, a local Dask cluster's start (which the train
command no longer needs), MLflow's import and the model logging, and the
training itself (the run's ``train_seconds``). Two costs the command now avoids
are shown as what they would add: MLflow's telemetry (its threads joined at
exit) and the garbage collector sweeping the heap while the interpreter tears
its modules down.

    python benchmarks/bench_start.py                 # 20 000 rows, 3 repeats
    python benchmarks/bench_start.py --repeats 5 --before /path/to/older/checkout

``--before`` also times the command from another checkout of nnpipe (PYTHONPATH)
in the same directories, for a before/after comparison (on the same reused server).
Target: the second run <= 5 s. The benchmark's servers use their own state
directory, with the reused server's database in it (the first repeat's first run
pays its migrations, about 5 s), and are stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "import sys; from nnpipe.cli import main; sys.exit(main())"

PEER = r"""
import sys, time
import numpy as np, pyarrow.parquet as pq
import mlflow, mlflow.sklearn
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
table = pq.read_table(sys.argv[1])
X = np.column_stack([table[c].to_numpy() for c in table.column_names if c.startswith("x")])
y = table["y"].to_numpy()
scaler = StandardScaler().fit(X)
model = MLPRegressor(
    hidden_layer_sizes=(64, 64), activation="tanh", batch_size=256, max_iter=1, random_state=0
)
start = time.perf_counter()
model.fit(scaler.transform(X), y)
seconds = time.perf_counter() - start
mlflow.set_tracking_uri("sqlite:///peer.db")
mlflow.set_experiment("peer")
with mlflow.start_run():
    mlflow.log_params(model.get_params())
    mlflow.log_metrics({"train_seconds": seconds, "loss": model.loss_})
    mlflow.sklearn.log_model(
        model,
        name="model",
        input_example=X[:5],
        skops_trusted_types=["sklearn.neural_network._stochastic_optimizers.AdamOptimizer"],
    )
"""

# nnpipe commands turn MLflow's telemetry off unless the user set this; the peer and
# the parts get the same.
NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true"}

IMPORTS = (
    "import nnpipe.cli, flows.train_bp, prefect, mlflow, nnpipe.tracking._store, "
    "mlflow.store.tracking.sqlalchemy_store"
)

EMPTY_FLOW = "from prefect import flow\nflow(lambda: None, name='empty')()\n"

LOCAL_CLUSTER = """
if __name__ == "__main__":
    from flows.cluster import dask_client
    with dask_client(None):
        pass
"""

LOG_MODEL = """
import sys, time
start = time.perf_counter()
import mlflow
imported = time.perf_counter() - start
from mlflow import MlflowClient
from nnpipe.tracking.model import log_pyfunc_model
uri = "sqlite:///mlflow.db"
client = MlflowClient(uri)
run = client.create_run(client.get_run(sys.argv[2]).info.experiment_id)
start = time.perf_counter()
log_pyfunc_model(uri, run.info.run_id, sys.argv[1])
print(imported, time.perf_counter() - start)
"""


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Run ``args``; its wall time and stdout (fails loudly on a non-zero exit)."""
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def environment(tree: Path, server_home: Path) -> dict[str, str]:
    """A user's environment: no Prefect or MLflow settings, this (or ``tree``'s) nnpipe first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(
        PYTHONPATH=str(tree),
        NNPIPE_SERVER_HOME=str(server_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # As the command sets it: a temporary server takes over 20 s on a busy machine.
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    env.pop("NNPIPE_PREFECT_SERVER", None)
    return env


def train_command(data: Path) -> list[str]:
    """The command timed: ``nnpipe train --dataset DATA --epochs 1``."""
    return [sys.executable, "-c", COMMAND, "train", "--dataset", str(data), "--epochs", "1"]


def train_twice(env: dict[str, str], workdir: Path, data: Path) -> tuple[float, float, dict]:
    """The command twice in ``workdir``: (first, second) wall times and the second's JSON."""
    args = train_command(data)
    first, _ = timed(args, env, workdir)
    second, out = timed([*args, "--json"], env, workdir)
    return first, second, json.loads(out)


def stop_server(env: dict[str, str], cwd: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", COMMAND, "server", "stop"], env=env, cwd=cwd, capture_output=True
    )


def breakdown(env: dict[str, str], workdir: Path, data: Path, result: dict) -> dict[str, float]:
    """The parts, each in a fresh process in ``workdir`` (the reused server still running)."""
    py = [sys.executable, "-c"]
    parts: dict[str, float] = {}
    parts["python + command imports"], _ = timed(
        [*py, "import nnpipe.cli, flows.train_bp, prefect"], env, workdir
    )
    parts["python + prefect import"], _ = timed([*py, "import prefect"], env, workdir)
    status = subprocess.run(
        [*py, COMMAND, "server", "status", "--json"], env=env, cwd=workdir, capture_output=True
    )
    url = json.loads(status.stdout)["url"]
    parts["empty flow, reused server"], _ = timed(
        [*py, EMPTY_FLOW], {**env, "PREFECT_API_URL": url}, workdir
    )
    parts["empty flow, temporary server"], _ = timed([*py, EMPTY_FLOW], env, workdir)
    parts["local Dask cluster start+stop"], _ = timed([*py, LOCAL_CLUSTER], env, workdir)
    _, out = timed(
        [*py, LOG_MODEL, result["summary"]["model_path"], result["run_ids"]["train_bp"]],
        {**env, **NO_TELEMETRY},
        workdir,
    )
    parts["mlflow import"], parts["model logging"] = map(float, out.split())
    # The command again, as it runs (MLflow's telemetry off) and with the telemetry on.
    train = train_command(data)
    quiet, _ = timed(train, env, workdir)
    loud, _ = timed(train, {**env, "MLFLOW_DISABLE_TELEMETRY": "false"}, workdir)
    parts["mlflow telemetry, if on"] = loud - quiet
    # What the interpreter's teardown costs with the garbage collector on (the command
    # freezes it before exiting): the command's imports, then exit either way.
    collected, _ = timed([*py, IMPORTS], env, workdir)
    frozen, _ = timed([*py, IMPORTS + "; import gc; gc.disable(); gc.freeze()"], env, workdir)
    parts["teardown collection, if on"] = collected - frozen
    parts["training (train_seconds)"] = float(result["summary"]["train_seconds"])
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another nnpipe checkout to time too")
    parser.add_argument("--quick", action="store_true", help="one repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 1

    runs: dict[str, list[float]] = {}
    parts: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="nnpipe-bench-start-") as tmp:
        root = Path(tmp)
        env = environment(ROOT, root / "server-home")
        data = root / "data"
        timed(
            [sys.executable, "-c", COMMAND, "make-data", "regression", str(data)]
            + ["--rows", str(args.rows)],
            env,
            root,
        )
        runs["nnpipe --help"] = [
            timed([sys.executable, "-c", COMMAND, "--help"], env, root)[0]
            for _ in range(args.repeats)
        ]
        try:
            for i in range(args.repeats):
                stop_server(env, root)  # every repeat starts from nothing running
                workdir = root / f"run-{i}"
                workdir.mkdir()
                first, second, result = train_twice(env, workdir, data)
                runs.setdefault("nnpipe train: first run", []).append(first)
                runs.setdefault("nnpipe train: second run", []).append(second)
                for name, seconds in breakdown(env, workdir, data, result).items():
                    parts.setdefault(name, []).append(seconds)
                peer_dir = root / f"peer-{i}"
                peer_dir.mkdir()
                peer = [sys.executable, "-c", PEER, str(data)]
                peer_env = {**env, **NO_TELEMETRY}  # as nnpipe runs MLflow
                runs.setdefault("peer: first run", []).append(timed(peer, peer_env, peer_dir)[0])
                runs.setdefault("peer: second run", []).append(timed(peer, peer_env, peer_dir)[0])
                if args.before:
                    old_env = environment(args.before, root / "server-home")
                    old = root / f"before-{i}"
                    old.mkdir()
                    first, second, _ = train_twice(old_env, old, data)
                    runs.setdefault("before: first run", []).append(first)
                    runs.setdefault("before: second run", []).append(second)
        finally:
            stop_server(env, root)
    _print(runs, parts, args)
    return 0


def _print(runs: dict[str, list[float]], parts: dict[str, list[float]], args) -> None:
    print(f"nnpipe train --dataset DIR --epochs 1, {args.rows} rows; medians of {args.repeats}")
    load = os.getloadavg()[0]
    print(f"(2-core machine, load average {load:.1f} at the end)\n")
    for name, values in {**runs}.items():
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"  {name:<34} {statistics.median(values):6.2f} s   [{shown}]")
    print("\nwhere the time goes (each in a fresh process):")
    for name, values in parts.items():
        print(f"  {name:<34} {statistics.median(values):6.2f} s")
    ours = statistics.median(runs["nnpipe train: second run"])
    peer = statistics.median(runs["peer: second run"])
    print(f"\nsecond run: nnpipe / peer = {ours / peer:.2f}  (target: nnpipe <= 5 s)")
    if "before: second run" in runs:
        before = statistics.median(runs["before: second run"])
        print(f"second run: before / now = {before / ours:.2f}")


if __name__ == "__main__":
    sys.exit(main())
