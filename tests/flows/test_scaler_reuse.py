"""prepare_data fits the scalers once: a rerun on the same data, split and kind reads nothing."""

from __future__ import annotations

import threading

import pytest

from flows.config import DataConfig
from flows.prepare_data import prepare_data
from nnpipe.data.dataset import ParquetDataset

pytestmark = pytest.mark.usefixtures("prefect_harness")

N_PARTITIONS = 3


@pytest.fixture
def passes(monkeypatch):
    """Passes over the regression data: partition tables read, divided by the partitions."""
    reads: list[int] = []
    lock = threading.Lock()
    original = ParquetDataset._read_table

    def counting(self, index, *args, **kwargs):
        with lock:  # local Dask workers are threads of this process
            reads.append(index)
        return original(self, index, *args, **kwargs)

    monkeypatch.setattr(ParquetDataset, "_read_table", counting)

    def count() -> float:
        n = len(reads) / N_PARTITIONS
        reads.clear()
        return n

    return count


def config(workdir, **values) -> DataConfig:
    return DataConfig.model_validate(
        {
            "workdir": str(workdir),
            "regression": {"n_rows": 600, "n_features": 2, "rows_per_partition": 200},
            "hopfield": {
                "n_neurons": 16,
                "n_patterns": 2,
                "n_probes": 40,
                "rows_per_partition": 20,
            },
            **values,
        }
    )


def test_scalers_are_reused_until_data_split_or_kind_changes(tmp_path, passes):
    first = prepare_data(config(tmp_path))["summary"]["scalers"]
    assert passes() == 1 and first["reused"] is False
    again = prepare_data(config(tmp_path))["summary"]["scalers"]
    assert passes() == 0 and again["reused"] is True
    assert again["n_samples_seen"] == first["n_samples_seen"]
    prepare_data(config(tmp_path, split_seed=1))  # another split: fitted again
    assert passes() == 1
    prepare_data(config(tmp_path, split_seed=1, scaler="minmax"))  # another kind
    assert passes() == 1
    # Data rewritten with other noise has the same files, sizes and rows: still refitted.
    noisier = {"n_rows": 600, "n_features": 2, "rows_per_partition": 200, "noise": 0.5}
    changed = config(tmp_path, split_seed=1, scaler="minmax", overwrite=True, regression=noisier)
    assert prepare_data(changed)["summary"]["scalers"]["reused"] is False
    assert passes() == 1
