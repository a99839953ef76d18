"""Existing data made with other parameters than the config's is refused, never used."""

from __future__ import annotations

import pytest

from flows.config import DataConfig
from flows.datasets import DatasetMismatch, write_dataset
from flows.prepare_data import check_data


def data_config(workdir, **regression) -> DataConfig:
    return DataConfig.model_validate(
        {
            "workdir": str(workdir),
            "regression": {"n_rows": 400, "n_features": 2, "rows_per_partition": 200, **regression},
            "hopfield": {
                "n_neurons": 16,
                "n_patterns": 2,
                "n_probes": 60,
                "rows_per_partition": 30,
            },
        }
    )


def write_both(config: DataConfig) -> None:
    r, h = config.regression, config.hopfield
    write_dataset(
        "regression",
        config.regression_path,
        n_rows=r.n_rows,
        n_features=r.n_features,
        rows_per_partition=r.rows_per_partition,
    )
    write_dataset(
        "hopfield",
        config.hopfield_path,
        n_rows=h.n_probes,
        n_neurons=h.n_neurons,
        n_patterns=h.n_patterns,
        rows_per_partition=h.rows_per_partition,
    )


def test_data_made_as_the_config_asks_is_accepted(tmp_path):
    config = data_config(tmp_path)
    check_data(config)  # nothing there yet: it will be written
    write_both(config)
    check_data(config)


def test_data_made_with_other_sizes_is_refused_in_one_line_naming_both(tmp_path):
    write_both(data_config(tmp_path))
    with pytest.raises(DatasetMismatch) as info:
        check_data(data_config(tmp_path, n_rows=800, rows_per_partition=100))
    message = str(info.value)
    assert "\n" not in message
    assert "n_rows=400, rows_per_partition=200" in message  # what the data was made with
    assert "n_rows=800, rows_per_partition=100" in message  # what the config asks for
    assert "--overwrite" in message and str(tmp_path / "data" / "regression") in message


def test_hopfield_data_with_other_neurons_is_refused_too(tmp_path):
    write_both(data_config(tmp_path))
    config = data_config(tmp_path)
    config.hopfield = config.hopfield.model_copy(update={"n_neurons": 32})
    with pytest.raises(DatasetMismatch, match="n_neurons=16 but the config asks for n_neurons=32"):
        check_data(config)


def test_data_without_a_record_is_refused_unless_used_as_it_is(tmp_path):
    config = data_config(tmp_path)
    write_both(config)
    (config.regression_path / "_dataset.json").unlink()
    with pytest.raises(DatasetMismatch, match="no record of the parameters"):
        check_data(config)
    check_data(config.model_copy(update={"generate": False}))  # the data there, as it is
    check_data(config.model_copy(update={"overwrite": True}))  # rewritten by the flow
