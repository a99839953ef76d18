"""Partitioned Parquet through Dask: datasets, out-of-core scalers, minibatch streams.

The only package that imports pyarrow and dask. Public names are loaded on first
use, so ``import nnpipe.data`` stays cheap.
"""

from __future__ import annotations

from nnpipe._lazy import lazy_attributes

_EXPORTS = {
    "ParquetDataset": "nnpipe.data.dataset",
    "DataError": "nnpipe.data.partition_io",
    "Partition": "nnpipe.data.partition_io",
    "list_parquet_files": "nnpipe.data.partition_io",
    "read_patterns": "nnpipe.data.partition_io",
    "ArrayDataset": "nnpipe.data.memory",
    "TrainValidationSplit": "nnpipe.data.split",
    "fit_scalers": "nnpipe.data.scaling",
    "fit_scalers_and_classes": "nnpipe.data.scaling",
    "iter_minibatches": "nnpipe.data.stream",
    "MinibatchStream": "nnpipe.data.stream",
    "write_regression_dataset": "nnpipe.data.synthetic",
    "write_classification_dataset": "nnpipe.data.synthetic",
    "write_hopfield_dataset": "nnpipe.data.synthetic",
    "WrittenDataset": "nnpipe.data.synthetic",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, __all__)
