"""The data tests' Parquet fixtures, reused: the Trainer is checked on the same small datasets."""

from __future__ import annotations

from tests.data.conftest import local_client, parquet_xy, write_parts, xy

__all__ = ["local_client", "parquet_xy", "write_parts", "xy"]
