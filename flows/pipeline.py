"""Flow ``pipeline``: prepare_data -> train_bp -> recall_hopfield, on one Dask cluster.

The stages run as subflows (each its own flow run in Prefect and its own run in
MLflow). Without ``dask_address`` one local cluster is started for the whole
pipeline and handed to every stage. ``train.task: classification`` trains a
classifier on ``train.dataset`` (a labelled Parquet dataset, required then);
prepare_data still writes the synthetic sets and the regression scalers.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow

from flows.cluster import dask_client
from flows.config import PipelineConfig
from flows.prepare_data import check_data, prepare_data
from flows.recall_hopfield import recall_hopfield
from flows.train_bp import train_bp


def stage_configs(config: PipelineConfig, dask_address: str | None = None):
    """The three stage configs, made to agree on data paths, split and scaler."""
    address = dask_address or config.dask_address
    train = config.train.model_copy(
        update={
            "dask_address": address,
            "dataset": config.train.dataset or config.data.regression_path,
        }
    )
    shared: dict[str, Any] = {"dask_address": address}
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
            "dataset": config.recall.dataset or config.data.hopfield_path,
        }
    )
    return data, train, recall


# The defaults, shown in the Prefect UI form of a deployment (never mutated).
DEFAULT_CONFIG = PipelineConfig()


@flow(name="pipeline")
def pipeline(config: PipelineConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    """Data and scalers, then BP training, then Hopfield recall; all run ids and summaries."""
    start = time.perf_counter()
    check_data(config.data)  # data made with other parameters stops the pipeline here
    with dask_client(config.dask_address) as client:
        address = config.dask_address or client.scheduler.address
        data, train, recall = stage_configs(config, address)
        prepared = prepare_data(config=data)
        trained = train_bp(config=train)
        recalled = recall_hopfield(config=recall)
    run_ids = {**prepared["run_ids"], **trained["run_ids"], **recalled["run_ids"]}
    return {
        "run_ids": run_ids,
        "summary": {
            "prepare_data": prepared["summary"],
            "train_bp": trained["summary"],
            "recall_hopfield": recalled["summary"],
            "seconds": time.perf_counter() - start,
        },
    }
