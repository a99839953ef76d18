"""Flow ``sweep_bp``: many trainings of one base config over a search space, on the Dask workers.

open dataset -> scalers (as train_bp gets them) -> trials as Dask tasks, one per
worker thread, rung by rung (successive halving: the best 1/eta continue from
their checkpoints) -> a child run per trial -> the parent run's leaderboard,
plot, best config and best model -> ``@champion`` moved if the model beats it.

A rerun of the same sweep finds its trials' directories: finished budgets are
read back, unfinished ones continue after their last checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import progress
from flows.cluster import dask_client, describe
from flows.config import TrainConfig, dump_config
from flows.naming import run_name
from flows.sweep_config import SweepConfig
from flows.sweep_runs import ChildRuns, leaderboard_rows, table_rows
from flows.sweep_trials import Trial, make_trials, run_trials
from flows.train_bp import (
    get_scaler_and_classes,
    get_scalers,
    is_classifier,
    make_split,
    open_dataset,
    validation_score,
)
from nnpipe.data.dataset import ParquetDataset
from nnpipe.tracking import (
    MlflowTracker,
    log_leaderboard,
    promote_if_better,
    validation_loss_figure,
)

Inputs = tuple[tuple[Any, Any], Any]  # ((x_scaler, y_scaler), classes or None)


def check_inputs(config: SweepConfig) -> ParquetDataset:
    """Open the base config's dataset before any run starts, so a wrong path fails at once."""
    return open_dataset.fn(config.train)


@task(cache_policy=NO_CACHE)
def trial_inputs(
    trials: Sequence[Trial], dataset: ParquetDataset, client: Any
) -> dict[str, Inputs]:
    """Each trial's scalers (and a classifier's classes), fitted once per distinct split."""
    by_split: dict[tuple[float, int], Inputs] = {}
    inputs = {}
    for trial in trials:
        config = trial.config
        split = make_split(config)
        key = (split.validation_fraction, split.seed)
        if key not in by_split:
            if is_classifier(config):
                x_scaler, classes = get_scaler_and_classes.fn(config, dataset, split, client)
                by_split[key] = ((x_scaler, None), classes)
            else:
                x_scaler, y_scaler, _ = get_scalers.fn(config, dataset, split, client)
                by_split[key] = ((x_scaler, y_scaler), None)
        inputs[trial.trial_id] = by_split[key]
    return inputs


def _loss(result: dict[str, Any]) -> float:
    value = float(result["val_loss"])
    return value if not math.isnan(value) else math.inf


@task(cache_policy=NO_CACHE)
def train_trials(
    client: Any,
    trials: Sequence[Trial],
    budgets: Sequence[int],
    eta: int,
    inputs: dict[str, Inputs],
    on_result: Callable[[Trial, dict[str, Any], int], None],
) -> dict[str, dict[str, Any]]:
    """Every trial to the first budget; the best 1/eta of each rung on to the next one."""
    alive, results = list(trials), {}
    total = sum(max(1, len(trials) // eta**rung) for rung in range(len(budgets)))
    progress.start("sweep_bp", total, unit="trial")
    for rung, budget in enumerate(budgets):

        def arrived(trial: Trial, result: dict[str, Any], rung: int = rung) -> None:
            results[trial.trial_id] = {**result, "rung": rung}
            on_result(trial, results[trial.trial_id], rung)
            progress.advance("sweep_bp", {"val_loss": result["val_loss"]})

        run_trials(client, alive, budget, inputs.__getitem__, on_result=arrived)
        if rung + 1 < len(budgets):
            keep = max(1, len(alive) // eta)
            alive = sorted(alive, key=lambda t: (_loss(results[t.trial_id]), t.number))[:keep]
    progress.finish("sweep_bp")
    return results


def log_parent(
    tracker: MlflowTracker,
    config: SweepConfig,
    dataset: ParquetDataset,
    rows: list[dict[str, Any]],
    best: Trial,
) -> None:
    """Leaderboard table, validation loss against each parameter, best config, best model."""
    metric_names = sorted(rows[0]["metrics"]) if rows else []
    log_leaderboard(tracker.tracking_uri, tracker.run_id, table_rows(rows, metric_names))
    log_scale = [n for n, s in config.space.items() if isinstance(s, dict) and "loguniform" in s]
    tracker.log_plot(
        "plots/val_loss_vs_params.png",
        validation_loss_figure,
        rows,
        list(config.space),
        log_scale=log_scale,
    )
    best_config = config.sweep_dir / "best_config.yaml"
    best_config.write_text(dump_config(best.config))
    tracker.log_artifact(best_config)
    model_path = rows[0]["model_path"]
    tracker.log_artifact(model_path, artifact_path="model_file")
    tracker.log_model(model_path, input_example=_example(dataset, best.config))


def _example(dataset: ParquetDataset, config: TrainConfig) -> Any:
    """A few validation rows as the logged model's input example."""
    split = make_split(config)
    for i in range(dataset.n_partitions):
        X, _ = dataset.read_partition(i, "validation", split)
        if len(X):
            return X[:5]
    return None


# The defaults, shown in the Prefect UI form of a deployment (never mutated).
DEFAULT_CONFIG = SweepConfig(space={"learning_rate_init": [1e-3, 1e-2]})


@flow(name="sweep_bp")
def sweep_bp(config: SweepConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    """Train every trial of the sweep on the Dask workers; track parent and child runs."""
    base = config.train
    trials = make_trials(config)
    budgets = config.budgets
    tracker = MlflowTracker(config.experiment, registered_model_name=base.registered_model_name)
    name = run_name(config.sweep_id, f"{len(trials)} trials")
    tags = {"nnpipe.flow": "sweep_bp", "nnpipe.sweep.id": config.sweep_id}
    start = time.perf_counter()
    with tracker.run(run_name=name, tags=tags) as parent:
        tracker.log_params(
            {
                "sweep": config.model_dump(mode="json", exclude={"train"}),
                "config": base.model_dump(mode="json"),
            }
        )
        children = ChildRuns(config.experiment, parent, tracker.tracking_uri)
        dataset = open_dataset(base)
        try:
            with dask_client(config.dask_address) as client:
                cluster = describe(client)
                tracker.log_params({"cluster": cluster, "sweep_dir": str(config.sweep_dir)})
                inputs = trial_inputs(trials, dataset, client)
                results = train_trials(
                    client, trials, budgets, config.halving.eta, inputs, children.log
                )
        except BaseException:
            children.end("FAILED")
            raise
        children.end()
        rows = leaderboard_rows(trials, results, children.run_ids)
        best = next(t for t in trials if t.trial_id == rows[0]["trial_id"])
        summary = _summary(config, trials, results, rows, cluster, time.perf_counter() - start)
        tracker.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        tracker.log_metrics({f"best_{k}": v for k, v in rows[0]["metrics"].items()})
        log_parent(tracker, config, dataset, rows, best)
    registered = tracker.registered_models[-1] if tracker.registered_models else None
    if registered is not None:
        # Judged like any training run's model (R2 or log-loss on its validation rows),
        # so sweeps and single trainings of one registered model compete fairly.
        champion = promote_if_better(
            tracker.tracking_uri,
            registered.registered_name,
            registered.version,
            validation_score(config.train, rows[0]["metrics"]),
        )
        tracker.set_tags(
            {"nnpipe.champion": champion["champion"], "nnpipe.champion_moved": champion["moved"]},
            run_id=parent,
        )
        summary["champion"] = champion
        summary["registered_model"] = registered.registry_uri
    return {"run_ids": {"sweep_bp": parent}, "summary": summary}


def _summary(
    config: SweepConfig,
    trials: Sequence[Trial],
    results: dict[str, dict[str, Any]],
    rows: list[dict[str, Any]],
    cluster: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    best = rows[0]
    return {
        "sweep_id": config.sweep_id,
        "sweep_dir": str(config.sweep_dir),
        "strategy": config.strategy,
        "budgets": config.budgets,
        "n_trials": len(trials),
        "n_workers": cluster["n_workers"],
        "seconds": seconds,
        "epochs_total": sum(int(r["epochs"]) for r in results.values()),
        "trials_reused": sum(1 for r in results.values() if r.get("reused")),
        "best_val_loss": best["val_loss"],
        "best_params": best["params"],
        "best_metrics": best["metrics"],
        "best_model_path": best["model_path"],
        "best_config": str(config.sweep_dir / "best_config.yaml"),
        "leaderboard": [{k: v for k, v in row.items() if k != "model_path"} for row in rows],
    }
