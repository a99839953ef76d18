"""``train_bp`` across Dask workers: the config's ``distributed`` section as library calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.config import TrainConfig
from nnpipe.data.dataset import ParquetDataset
from nnpipe.data.split import TrainValidationSplit
from nnpipe.training import TrainingResult
from nnpipe.training.distributed import train_distributed


def train_distributed_network(
    config: TrainConfig,
    dataset: ParquetDataset,
    split: TrainValidationSplit,
    scalers: tuple[Any, Any],
    client: Any,
    checkpoint_dir: Path,
    classes: Any,
    callback: Any,
    round_callback: Any,
    model: Any,
) -> TrainingResult:
    """``train_network`` across the Dask workers the config's ``distributed`` section asks for."""
    options = config.distributed
    return train_distributed(
        model,
        dataset,
        workers=options.workers,
        client=client,
        local_steps=options.local_steps,
        warmup_epochs=options.warmup_epochs,
        worker_timeout=options.worker_timeout,
        epochs=config.max_epochs,
        batch_size=config.batch_size,
        split=split,
        x_scaler=scalers[0],
        y_scaler=scalers[1],
        random_state=config.random_state,
        callback=callback,
        round_callback=round_callback,
        checkpoint_dir=checkpoint_dir,
        keep_checkpoints=config.keep_checkpoints,
        classes=classes,
    )


def cluster_options(config: TrainConfig) -> dict[str, Any]:
    """The local cluster's size: one single-threaded worker process each, when distributed."""
    if config.distributed is None:
        return {}
    return {"n_workers": config.distributed.workers, "processes": True}


def training_params(config: TrainConfig) -> dict[str, Any]:
    """Workers and local steps (H) of the run: 1 and None in one process."""
    options = config.distributed
    if options is None:
        return {"workers": 1, "local_steps": None, "warmup_epochs": None}
    return {
        "workers": options.workers,
        "local_steps": options.local_steps,
        "warmup_epochs": options.warmup_epochs,
    }
