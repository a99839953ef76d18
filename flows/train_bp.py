"""Flow ``train_bp``: an MLPRegressor (or MLPClassifier) trained out of core on Parquet.

load dataset -> scalers (saved by prepare_data, else fitted on the workers; for a
classifier fitted together with the classes in one pass) -> train epochs of
streamed minibatches (per-epoch metrics to MLflow) -> evaluate on the validation
rows -> save the model file (network + feature scaler + column names) -> log the
servable model.

``task: classification`` reads the target as one column of class labels (int,
str or bool). The classes are those of the training rows, sorted; the network
trains on their indices and answers with the labels themselves.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import progress
from flows.cluster import client_if_needed, describe
from flows.config import TrainConfig
from flows.lineage import log_dataset_input, publish_run, run_tags
from flows.naming import run_name
from flows.predict import MODEL_FILE
from flows.prepare_data import load_saved_scalers
from flows.report import train_report
from flows.resume import take_over
from flows.train_distributed import cluster_options, distributed_options, training_params
from nnpipe.core.mlp import MLPClassifier, MLPRegressor
from nnpipe.core.trained_model import TrainedModel
from nnpipe.data import storage
from nnpipe.data.dataset import ParquetDataset
from nnpipe.data.scaling import fit_scalers, fit_scalers_and_classes
from nnpipe.data.split import TrainValidationSplit
from nnpipe.tracking import (
    MlflowTracker,
    RegressionMetrics,
    ValidationScore,
    classification_metrics,
    loss_curve_svg,
)
from nnpipe.training import TrainingResult, train_distributed, train_out_of_core


def is_classifier(config: TrainConfig) -> bool:
    """Whether the config trains a classifier (``task: classification``)."""
    return config.task == "classification"


def build_model(config: TrainConfig) -> MLPRegressor | MLPClassifier:
    """The network the config describes (MLPRegressor / MLPClassifier parameter names)."""
    estimator = MLPClassifier if is_classifier(config) else MLPRegressor
    return estimator(
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
    return ParquetDataset(
        config.dataset_path,
        features=config.features,
        targets=config.target,
        labels=is_classifier(config),
        nan_policy=config.nan_policy,
        storage_options=config.storage_options,
    )


def check_inputs(config: TrainConfig) -> ParquetDataset:
    """Open the dataset before any run starts, so a wrong path or column fails at once."""
    return open_dataset.fn(config)


@task(cache_policy=NO_CACHE)
def get_scalers(
    config: TrainConfig, dataset: ParquetDataset, split: TrainValidationSplit, client: Any
) -> tuple[Any, Any, str]:
    """Scalers saved by prepare_data for this dataset and split, else fitted now in one pass."""
    saved = load_saved_scalers(
        config.workdir, dataset, config.scaler, split, config.storage_options
    )
    if saved is not None:
        return saved[0], saved[1], "prepare_data"
    x_scaler, y_scaler = fit_scalers(
        dataset, config.scaler, config.scaler, subset="train", split=split, client=client
    )
    return x_scaler, y_scaler, "fitted"


@task(cache_policy=NO_CACHE)
def get_scaler_and_classes(
    config: TrainConfig, dataset: ParquetDataset, split: TrainValidationSplit, client: Any
) -> tuple[Any, np.ndarray]:
    """A classifier's feature scaler and classes (sorted), from one pass over the training rows."""
    return fit_scalers_and_classes(dataset, config.scaler, split=split, client=client)


def train_network(
    config: TrainConfig,
    dataset: ParquetDataset,
    split: TrainValidationSplit,
    scalers: tuple[Any, Any],
    client: Any,
    checkpoint_dir: Path | str,
    callback: Any = None,
    epochs: int | None = None,
    round_callback: Any = None,
) -> TrainingResult:
    """The flow's training as one library call: the config's network, epochs and seed.

    A classifier trains on class indices 0..K-1 (what a labels dataset reads).
    ``epochs`` (default ``max_epochs``) stops earlier; a later call with more
    continues from the checkpoints (a sweep's rungs). With a ``distributed``
    section, across that many Dask workers of ``client``.
    """
    classes = None if dataset.classes is None else np.arange(len(dataset.classes))
    common = {
        "epochs": config.max_epochs if epochs is None else epochs,
        "batch_size": config.batch_size,
        "split": split,
        "x_scaler": scalers[0],
        "y_scaler": scalers[1],
        "random_state": config.random_state,
        "callback": callback,
        "checkpoint_dir": checkpoint_dir,
        "keep_checkpoints": config.keep_checkpoints,
        "classes": classes,
        "client": client,
    }
    if config.distributed is not None:
        return train_distributed(
            build_model(config),
            dataset,
            round_callback=round_callback,
            **distributed_options(config),
            **common,
        )
    return train_out_of_core(build_model(config), dataset, **common)


@task(cache_policy=NO_CACHE)
def train(
    config: TrainConfig,
    dataset: ParquetDataset,
    split: TrainValidationSplit,
    scalers: tuple[Any, Any],
    client: Any,
    epoch_callback: Any,
    checkpoint_dir: Path | str,
):
    """Epochs of shuffled, prefetched minibatches into partial_fit, with early stopping."""
    progress.start("train_bp", config.max_epochs, unit="epoch")

    def on_epoch(metrics: dict[str, Any]) -> None:
        epoch_callback(metrics, step=int(metrics["epoch"]))
        shown = {"loss": metrics["train_loss"], "val_loss": metrics["val_loss"]}
        if "val_accuracy" in metrics:
            shown["val_acc"] = metrics["val_accuracy"]
        progress.advance("train_bp", shown)

    def on_round(metrics: dict[str, Any]) -> None:  # distributed training: stepped by round
        epoch_callback(metrics, step=int(metrics["round"]))

    result = train_network(
        config, dataset, split, scalers, client, checkpoint_dir, on_epoch, round_callback=on_round
    )
    progress.finish("train_bp")
    return result


def with_labels(network: MLPClassifier, classes: np.ndarray) -> MLPClassifier:
    """The classifier trained on class indices 0..K-1, made to answer with the labels themselves.

    The indices are positions in the sorted ``classes``, so the order (and with it
    the columns of ``predict_proba``) stays the same.
    """
    if not np.array_equal(network.classes_, np.arange(len(classes))):
        raise ValueError(
            f"the network was trained on classes {network.classes_.tolist()}, not on the "
            f"indices of the {len(classes)} labels {np.asarray(classes).tolist()}"
        )
    network.classes_ = np.asarray(classes)
    return network


@task(cache_policy=NO_CACHE)
def evaluate(
    model: TrainedModel, dataset: ParquetDataset, split: TrainValidationSplit
) -> tuple[dict[str, float], np.ndarray]:
    """R2, RMSE, MAE and the prediction range on the validation rows; a few rows as example.

    Partition by partition, in constant memory.
    """
    totals, example = RegressionMetrics(), None
    for i in range(dataset.n_partitions):
        X, y = dataset.read_partition(i, "validation", split)
        if len(X) == 0:
            continue
        if example is None:
            example = X[:5]
        totals.update(y, model.predict(X).reshape(len(X), -1))
    if totals.n == 0:
        raise ValueError(f"dataset {dataset.path!r} has no validation rows to evaluate on")
    metrics = totals.result()
    return metrics, example


@task(cache_policy=NO_CACHE)
def evaluate_classifier(
    model: TrainedModel, dataset: ParquetDataset, split: TrainValidationSplit
) -> tuple[dict[str, float], np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Accuracy, log-loss and macro F1 on the validation rows; (true, predicted) labels; example.

    ``baseline_accuracy`` is what always answering the most frequent class would score.
    """
    truths, probas, example = [], [], None
    for i in range(dataset.n_partitions):
        X, y = dataset.read_partition(i, "validation", split)  # y: class indices
        if len(X) == 0:
            continue
        if example is None:
            example = X[:5]
        probas.append(model.predict_proba(X))
        truths.append(y[:, 0].astype(np.intp))
    if not probas:
        raise ValueError(f"dataset {dataset.path!r} has no validation rows to evaluate on")
    classes = model.classes
    codes, proba = np.concatenate(truths), np.concatenate(probas)
    # The most probable class is what predict answers: no second pass for the labels.
    y_true, y_pred = classes[codes], classes[proba.argmax(axis=1)]
    metrics = classification_metrics(y_true, y_pred, proba, classes)
    metrics.update(
        {
            "val_rows": float(len(y_true)),
            "n_classes": float(len(classes)),
            "baseline_accuracy": float(np.bincount(codes).max() / len(codes)),
        }
    )
    return metrics, example, (y_true, y_pred)


def save_model(
    model: TrainedModel, out: Path | str, storage_options: dict | None = None
) -> Path | str:
    """``out``/model.npz: the one file `nnpipe predict` and the logged pyfunc read."""
    path = storage.join(out, MODEL_FILE)
    storage.save_file(model.save, path, storage_options)
    return path


def run_params(
    config: TrainConfig,
    dataset: ParquetDataset,
    split: TrainValidationSplit,
    scaler_source: str,
    cluster: dict[str, Any],
) -> dict[str, Any]:
    """What the run trained on and with (a classifier's classes under ``data.classes``)."""
    return {
        "data": dataset.describe(),
        "split": {"validation_fraction": split.validation_fraction, "seed": split.seed},
        "scaler_source": scaler_source,
        "model": build_model(config).get_params(),
        "cluster": cluster,
        "training": training_params(config),
    }


def log_evaluation(
    tracker: MlflowTracker, trained: TrainedModel, dataset: ParquetDataset, split: Any
) -> tuple[dict[str, float], np.ndarray]:
    """Evaluate on the validation rows; a classifier's confusion matrix and classes as artifacts."""
    if trained.classes is None:
        return evaluate(trained, dataset, split)
    metrics, example, (y_true, y_pred) = evaluate_classifier(trained, dataset, split)
    from nnpipe.tracking.plots import confusion_matrix_figure  # matplotlib: classifiers only

    tracker.log_plot(
        "plots/confusion_matrix.png",
        confusion_matrix_figure,
        y_true,
        y_pred,
        labels=trained.classes.tolist(),
        title="Confusion matrix (validation rows)",
    )
    tracker.log_dict(
        {"target": dataset.target_names[0], "classes": trained.classes.tolist()}, "classes.json"
    )
    return metrics, example


def log_training(
    tracker: MlflowTracker,
    config: TrainConfig,
    result: TrainingResult,
    metrics: dict[str, float],
    train_seconds: float,
) -> None:
    """The training's own numbers (added to ``metrics``), checkpoints, loss curve, config."""
    model = result.model
    metrics.update(
        {
            "epochs": float(result.epochs_done),
            "stopped_early": float(result.stopped_early),
            "train_seconds": train_seconds,
            "best_loss": float(model.best_loss_),
            "workers": float(result.workers),
            "workers_lost": float(result.workers_lost),
        }
    )
    if result.local_steps is not None:
        metrics["local_steps"] = float(result.local_steps)  # H used (the config may say auto)
    tracker.log_metrics(metrics)
    if result.workers_lost:
        tracker.set_tags({"nnpipe.workers_lost": result.workers_lost})
    tracker.log_params({"checkpoints": {"last": result.checkpoint, "best": result.best_checkpoint}})
    curve = loss_curve_svg(
        model.loss_curve_,
        model.validation_loss_curve_,
        title="Log-loss per epoch" if is_classifier(config) else "Loss per epoch",
    )
    tracker.log_text(curve, "plots/loss_curve.svg")
    tracker.log_dict(config.model_dump(mode="json"), "config.json")


def validation_score(config: TrainConfig, metrics: dict[str, float]) -> ValidationScore:
    """What decides the @champion: R2 of a regressor, log-loss of a classifier (validation)."""
    if is_classifier(config):
        return ValidationScore("log_loss", metrics["log_loss"], greater_is_better=False)
    return ValidationScore("r2", metrics["r2"])


# The defaults, shown in the Prefect UI form of a deployment (never mutated).
DEFAULT_CONFIG = TrainConfig()


@flow(name="train_bp")
def train_bp(
    config: TrainConfig = DEFAULT_CONFIG, parent_run_id: str | None = None
) -> dict[str, Any]:
    """Train the BP network out of core and track it in MLflow; return run id and summary."""
    tracker = MlflowTracker(config.experiment, registered_model_name=config.registered_model_name)
    sizes = "x".join(map(str, config.hidden_layer_sizes))
    name = run_name(storage.basename(config.dataset_path), sizes)
    with tracker.run(
        run_name=name, tags=run_tags("train_bp", parent_run_id), system_metrics=True
    ) as run_id:
        tracker.log_params({"config": config.model_dump(mode="json")})
        dataset = open_dataset(config)
        split = make_split(config)
        model_dir = storage.join(config.model_dir, run_id)
        checkpoint_dir = config.checkpoint_dir(dataset.fingerprint)
        resumed_from = take_over(
            checkpoint_dir,
            run_id,
            tracker,
            restart=config.restart,
            keep=config.keep_checkpoints,
            storage_options=config.storage_options,
        )
        with client_if_needed(
            config.dask_address, config.distributed is not None, **cluster_options(config)
        ) as client:
            cluster = describe(client)
            if is_classifier(config):
                x_scaler, classes = get_scaler_and_classes(config, dataset, split, client)
                dataset.set_classes(classes)
                y_scaler, scaler_source = None, "fitted"
            else:
                x_scaler, y_scaler, scaler_source = get_scalers(config, dataset, split, client)
            tracker.log_params(run_params(config, dataset, split, scaler_source, cluster))
            log_dataset_input(tracker, dataset, "training")
            start = time.perf_counter()
            result = train(
                config,
                dataset,
                split,
                (x_scaler, y_scaler),
                client,
                tracker.epoch_callback(run_id),
                checkpoint_dir,
            )
            train_seconds = time.perf_counter() - start
        model = result.model
        if is_classifier(config):
            with_labels(model, dataset.classes)
        trained = TrainedModel(model, x_scaler, dataset.feature_names, dataset.target_names)
        metrics, example = log_evaluation(tracker, trained, dataset, split)
        log_training(tracker, config, result, metrics, train_seconds)
        model_path = save_model(trained, model_dir, config.storage_options)
        with storage.local_copy(model_path, config.storage_options) as local:
            tracker.log_artifact(local, artifact_path="model_file")  # in the Artifacts tab
            logged = tracker.log_model(
                local, input_example=example, score=validation_score(config, metrics)
            )
    registered = tracker.registered_models[-1] if tracker.registered_models else None
    summary = {
        **metrics,
        "task": config.task,
        "model_path": str(model_path),
        "model_uri": logged.model_uri if logged else None,
        "registered_model": registered.registry_uri if registered else None,
        "champion": registered.champion_uri if registered and registered.champion else None,
        "scaler_source": scaler_source,
        "workers": result.workers,
        "local_steps": result.local_steps,
        "resumed_from": resumed_from,
        "checkpoint_dir": str(checkpoint_dir),
        "history": result.history,
    }
    if trained.classes is not None:
        summary["classes"] = trained.classes.tolist()
    result = {"run_ids": {"train_bp": run_id}, "summary": summary}
    publish_run(tracker, run_id, train_report(result), summary)
    return result
