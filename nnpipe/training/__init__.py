"""Training: the Trainer, ``train_out_of_core`` (one process), ``train_distributed`` (Dask).

Sits above ``nnpipe.data`` and ``nnpipe.core``, below the flows and the CLI.
Public names are loaded on first use, so ``import nnpipe.training`` stays cheap.
"""

from __future__ import annotations

from nnpipe._lazy import lazy_attributes

_EXPORTS = {
    "Trainer": "nnpipe.training.trainer",
    "TrainingResult": "nnpipe.training.trainer",
    "train_out_of_core": "nnpipe.training.trainer",
    "train_distributed": "nnpipe.training.distributed",
    "TrainingState": "nnpipe.training.state",
    "EpochStreams": "nnpipe.training.streams",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, __all__)
