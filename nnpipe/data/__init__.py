"""Partitioned Parquet through Dask: datasets, out-of-core scalers, minibatch streams.

The only package that imports pyarrow and dask.
"""
