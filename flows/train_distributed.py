"""``train_bp`` across Dask workers: what the config's ``distributed`` section asks for."""

from __future__ import annotations

from typing import Any

from flows.config import TrainConfig


def distributed_options(config: TrainConfig) -> dict[str, Any]:
    """The ``distributed`` section as ``train_distributed``'s keyword arguments."""
    options = config.distributed
    return {
        "workers": options.workers,
        "local_steps": options.local_steps,
        "warmup_epochs": options.warmup_epochs,
        "worker_timeout": options.worker_timeout,
    }


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
