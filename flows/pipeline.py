"""Flow ``pipeline``: prepare_data -> train_bp -> recall_hopfield, on one Dask cluster.

The stages run as subflows (each its own flow run in Prefect and its own run in
MLflow, nested under the pipeline's run in the pipeline's experiment). Without
``dask_address`` one local cluster is started for the whole pipeline and handed to
every stage. ``train.task: classification`` trains a
classifier on ``train.dataset`` (a labelled Parquet dataset, required then);
prepare_data still writes the synthetic sets and the regression scalers.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow

from flows.cluster import dask_client
from flows.config import PipelineConfig
from flows.lineage import publish_run, run_tags
from flows.naming import run_name
from flows.prepare_data import check_data, prepare_data
from flows.recall_hopfield import recall_hopfield
from flows.report import pipeline_report
from flows.train_bp import train_bp
from nnpipe.tracking import MlflowTracker


def stage_configs(config: PipelineConfig, dask_address: str | None = None):
    """The three stage configs, made to agree on data paths, split, scaler and experiment."""
    address = dask_address or config.dask_address
    train = config.train.model_copy(
        update={
            "dask_address": address,
            "dataset": config.train.dataset or config.data.regression_path,
            "experiment": config.experiment,
        }
    )
    shared: dict[str, Any] = {"dask_address": address, "experiment": config.experiment}
    if train.task == "regression":
        # Fit the scalers on exactly the rows train_bp trains on, so it reuses them. A
        # classifier trains on its own labelled dataset and fits its scaler with the classes.
        shared.update(
            validation_fraction=train.validation_fraction,
            split_seed=train.random_state,
            target=train.target,
            scaler=train.scaler,
            nan_policy=train.nan_policy,
        )
    data = config.data.model_copy(update=shared)
    recall = config.recall.model_copy(
        update={
            "dask_address": address,
            "experiment": config.experiment,
            "dataset": config.recall.dataset or config.data.hopfield_path,
        }
    )
    return data, train, recall


# The defaults, shown in the Prefect UI form of a deployment (never mutated).
DEFAULT_CONFIG = PipelineConfig()


@flow(name="pipeline")
def pipeline(config: PipelineConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    """Data and scalers, then BP training, then Hopfield recall; all run ids and summaries.

    One MLflow run ``pipeline`` in ``config.experiment`` is the parent of the three
    stage runs, which are logged into the same experiment so the UI nests them.
    """
    start = time.perf_counter()
    check_data(config.data)  # data made with other parameters stops the pipeline here
    tracker = MlflowTracker(config.experiment)
    with tracker.run(run_name=run_name("pipeline"), tags=run_tags("pipeline")) as parent:
        with dask_client(config.dask_address) as client:
            address = config.dask_address or client.scheduler.address
            data, train, recall = stage_configs(config, address)
            prepared = prepare_data(config=data, parent_run_id=parent)
            trained = train_bp(config=train, parent_run_id=parent)
            recalled = recall_hopfield(config=recall, parent_run_id=parent)
        summary = {
            "prepare_data": prepared["summary"],
            "train_bp": trained["summary"],
            "recall_hopfield": recalled["summary"],
            "seconds": time.perf_counter() - start,
        }
        tracker.log_params({"config": config.model_dump(mode="json")})
        metrics = pipeline_metrics(summary)
        tracker.log_metrics(metrics)
    run_ids = {**prepared["run_ids"], **trained["run_ids"], **recalled["run_ids"]}
    result = {"run_ids": run_ids, "parent_run_id": parent, "summary": summary}
    publish_run(tracker, parent, pipeline_report(result), metrics)
    return result


def pipeline_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of the three stages, for the parent run."""
    train, recall = summary["train_bp"], summary["recall_hopfield"]
    wanted = ("r2", "rmse", "accuracy", "log_loss", "epochs", "train_seconds")
    metrics = {f"train_{k}": train[k] for k in wanted if k in train}
    metrics.update(
        {f"recall_{k}": recall[k] for k in ("exact_recall_rate", "mean_overlap") if k in recall}
    )
    metrics["seconds"] = summary["seconds"]
    return metrics
