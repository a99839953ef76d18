"""Small datasets written with pyarrow directly, so the readers are checked against it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def write_parts(root, X, y, rows_per_partition, extra=None):
    """Write X (n, d) and y (n,) as part-00000.parquet... with columns x0.., y (+ extra)."""
    root.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(range(0, len(X), rows_per_partition)):
        e = s + rows_per_partition
        cols = {f"x{j}": X[s:e, j] for j in range(X.shape[1])}
        cols["y"] = y[s:e]
        for name, values in (extra or {}).items():
            cols[name] = values[s:e]
        pq.write_table(pa.table(cols), root / f"part-{i:05d}.parquet")
    return root


@pytest.fixture
def xy():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(1000, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) - 3.0 + 0.1 * rng.normal(size=1000)
    return X, y


@pytest.fixture
def parquet_xy(tmp_path, xy):
    """1000 rows in 10 files; x2 doubles as a row id so tests can follow rows."""
    X, y = xy
    X = X.copy()
    X[:, 2] = np.arange(len(X))
    return write_parts(tmp_path / "ds", X, y, 100), X, y


@pytest.fixture(scope="session")
def local_client():
    """A small in-process Dask cluster shared by the data tests, closed at the end."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    )
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()
