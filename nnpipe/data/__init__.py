"""Partitioned Parquet through Dask: datasets, out-of-core scalers, minibatch streams.

The only package that imports pyarrow and dask. Public names are loaded on first
use, so ``import nnpipe.data`` stays cheap.
"""

from __future__ import annotations

from nnpipe._lazy import lazy_attributes

_EXPORTS = {
    "ParquetDataset": "nnpipe.data.dataset",
    "DataError": "nnpipe.data.dataset",
    "Partition": "nnpipe.data.dataset",
    "list_parquet_files": "nnpipe.data.dataset",
    "ArrayDataset": "nnpipe.data.memory",
    "TrainValidationSplit": "nnpipe.data.split",
    "fit_scalers": "nnpipe.data.scaling",
    "iter_minibatches": "nnpipe.data.stream",
    "MinibatchStream": "nnpipe.data.stream",
    "write_regression_dataset": "nnpipe.data.writers",
    "write_classification_dataset": "nnpipe.data.writers",
    "write_hopfield_dataset": "nnpipe.data.writers",
    "WrittenDataset": "nnpipe.data.writers",
    "list_partitions": "nnpipe.data.partition_io",
    "list_probe_partitions": "nnpipe.data.partition_io",
    "read_arrays": "nnpipe.data.partition_io",
    "write_arrays": "nnpipe.data.partition_io",
    "read_patterns": "nnpipe.data.partition_io",
    "read_probe_partition": "nnpipe.data.partition_io",
    "result_path": "nnpipe.data.partition_io",
    "pending_partitions": "nnpipe.data.partition_io",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, __all__)
