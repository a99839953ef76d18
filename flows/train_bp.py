"""Flow ``train_bp``: an MLPRegressor trained out of core on partitioned Parquet.

load dataset -> scalers (saved by prepare_data, else fitted on the workers) ->
train epochs of streamed minibatches (per-epoch metrics to MLflow) -> evaluate on
the validation rows -> save the model file (network + feature scaler + column
names) -> log the servable model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import progress
from flows.cluster import dask_client, describe
from flows.config import TrainConfig
from flows.naming import run_name
from flows.predict import MODEL_FILE
from flows.prepare_data import load_saved_scalers
from nnpipe.core.mlp import MLPRegressor
from nnpipe.core.trained_model import TrainedModel
from nnpipe.data.dataset import ParquetDataset
from nnpipe.data.scaling import fit_scalers
from nnpipe.data.split import TrainValidationSplit
from nnpipe.tracking import MlflowTracker, loss_curve_figure, regression_metrics
from nnpipe.training import TrainingResult, train_out_of_core


def build_model(config: TrainConfig) -> MLPRegressor:
    """The network the config describes (MLPRegressor parameter names)."""
    return MLPRegressor(
        hidden_layer_sizes=tuple(config.hidden_layer_sizes),
        activation=config.activation,
        solver=config.solver,
        alpha=config.alpha,
        batch_size=config.batch_size,
        learning_rate_init=config.learning_rate_init,
        max_iter=config.max_epochs,
        n_iter_no_change=config.n_iter_no_change,
        random_state=config.random_state,
    )


def make_split(config: TrainConfig) -> TrainValidationSplit:
    """Validation rows by a hash of row position (the same split prepare_data fits on)."""
    return TrainValidationSplit(
        validation_fraction=config.validation_fraction, seed=config.random_state
    )


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def open_dataset(config: TrainConfig) -> ParquetDataset:
    """Open and check the dataset (columns, schemas, files); the read may hit remote storage."""
    return ParquetDataset(config.dataset_path, features=config.features, targets=config.target)


def check_inputs(config: TrainConfig) -> ParquetDataset:
    """Open the dataset before any run starts, so a wrong path or column fails at once."""
    return open_dataset.fn(config)


@task(cache_policy=NO_CACHE)
def get_scalers(
    config: TrainConfig, dataset: ParquetDataset, split: TrainValidationSplit, client: Any
) -> tuple[Any, Any, str]:
    """Scalers saved by prepare_data for this dataset and split, else fitted now in one pass."""
    saved = load_saved_scalers(config.workdir, dataset, config.scaler, split)
    if saved is not None:
        return saved[0], saved[1], "prepare_data"
    x_scaler, y_scaler = fit_scalers(
        dataset, config.scaler, config.scaler, subset="train", split=split, client=client
    )
    return x_scaler, y_scaler, "fitted"


def train_network(
    config: TrainConfig,
    dataset: ParquetDataset,
    split: TrainValidationSplit,
    scalers: tuple[Any, Any],
    client: Any,
    checkpoint_dir: Path,
    callback: Any = None,
) -> TrainingResult:
    """The flow's training as one library call: the config's network, epochs and seed."""
    return train_out_of_core(
        build_model(config),
        dataset,
        epochs=config.max_epochs,
        batch_size=config.batch_size,
        split=split,
        x_scaler=scalers[0],
        y_scaler=scalers[1],
        random_state=config.random_state,
        callback=callback,
        checkpoint_dir=checkpoint_dir,
        client=client,
    )


@task(cache_policy=NO_CACHE)
def train(
    config: TrainConfig,
    dataset: ParquetDataset,
    split: TrainValidationSplit,
    scalers: tuple[Any, Any],
    client: Any,
    epoch_callback: Any,
    checkpoint_dir: Path,
):
    """Epochs of shuffled, prefetched minibatches into partial_fit, with early stopping."""
    progress.start("train_bp", config.max_epochs, unit="epoch")

    def on_epoch(metrics: dict[str, Any]) -> None:
        epoch_callback(metrics, step=int(metrics["epoch"]))
        progress.advance(
            "train_bp", {"loss": metrics["train_loss"], "val_loss": metrics["val_loss"]}
        )

    result = train_network(config, dataset, split, scalers, client, checkpoint_dir, on_epoch)
    progress.finish("train_bp")
    return result


@task(cache_policy=NO_CACHE)
def evaluate(
    model: TrainedModel, dataset: ParquetDataset, split: TrainValidationSplit
) -> tuple[dict[str, float], np.ndarray]:
    """R2, RMSE, MAE and the prediction range on the validation rows; a few rows as example."""
    truths, preds, example = [], [], None
    for i in range(dataset.n_partitions):
        X, y = dataset.read_partition(i, "validation", split)
        if len(X) == 0:
            continue
        if example is None:
            example = X[:5]
        preds.append(model.predict(X).reshape(len(X), -1))
        truths.append(y)
    if not preds:
        raise ValueError(f"dataset {dataset.path!r} has no validation rows to evaluate on")
    y_true, y_pred = np.concatenate(truths), np.concatenate(preds)
    metrics = regression_metrics(y_true, y_pred)
    metrics.update(
        {
            "val_rows": float(len(y_true)),
            "prediction_min": float(y_pred.min()),
            "prediction_max": float(y_pred.max()),
            "target_min": float(y_true.min()),
            "target_max": float(y_true.max()),
            "negative_prediction_fraction": float((y_pred < 0).mean()),
            "negative_target_fraction": float((y_true < 0).mean()),
        }
    )
    return metrics, example


def save_model(model: TrainedModel, out: Path) -> Path:
    """``out``/model.npz: the one file `nnpipe predict` and the logged pyfunc read."""
    path = out / MODEL_FILE
    model.save(path)
    return path


# The defaults, shown in the Prefect UI form of a deployment (never mutated).
DEFAULT_CONFIG = TrainConfig()


@flow(name="train_bp")
def train_bp(config: TrainConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    """Train the BP network out of core and track it in MLflow; return run id and summary."""
    tracker = MlflowTracker(config.experiment, registered_model_name=config.registered_model_name)
    sizes = "x".join(map(str, config.hidden_layer_sizes))
    name = run_name(config.dataset_path.name, sizes)
    with tracker.run(run_name=name, tags={"nnpipe.flow": "train_bp"}) as run_id:
        tracker.log_params({"config": config.model_dump(mode="json")})
        dataset = open_dataset(config)
        split = make_split(config)
        model_dir = config.model_dir / run_id
        with dask_client(config.dask_address) as client:
            cluster = describe(client)
            x_scaler, y_scaler, scaler_source = get_scalers(config, dataset, split, client)
            tracker.log_params(
                {
                    "data": dataset.describe(),
                    "split": {"validation_fraction": split.validation_fraction, "seed": split.seed},
                    "scaler_source": scaler_source,
                    "model": build_model(config).get_params(),
                    "cluster": cluster,
                }
            )
            start = time.perf_counter()
            result = train(
                config,
                dataset,
                split,
                (x_scaler, y_scaler),
                client,
                tracker.epoch_callback(run_id),
                model_dir / "checkpoints",
            )
            train_seconds = time.perf_counter() - start
        model = result.model
        trained = TrainedModel(model, x_scaler, dataset.feature_names, dataset.target_names)
        metrics, example = evaluate(trained, dataset, split)
        metrics.update(
            {
                "epochs": float(result.epochs_done),
                "stopped_early": float(result.stopped_early),
                "train_seconds": train_seconds,
                "best_loss": float(model.best_loss_),
            }
        )
        tracker.log_metrics(metrics)
        model_path = save_model(trained, model_dir)
        tracker.log_artifact(model_path, artifact_path="model_file")  # in the Artifacts tab
        tracker.log_plot(
            "plots/loss_curve.png",
            loss_curve_figure,
            model.loss_curve_,
            model.validation_loss_curve_,
        )
        tracker.log_dict(config.model_dump(mode="json"), "config.json")
        logged = tracker.log_model(model_path, input_example=example)
    registered = tracker.registered_models[-1] if tracker.registered_models else None
    summary = {
        **metrics,
        "model_path": str(model_path),
        "model_uri": logged.model_uri if logged else None,
        "registered_model": registered.registry_uri if registered else None,
        "scaler_source": scaler_source,
        "history": result.history,
    }
    return {"run_ids": {"train_bp": run_id}, "summary": summary}
