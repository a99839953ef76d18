"""Flow parameters: typed defaults, YAML files, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import ConfigError, PipelineConfig, TrainConfig, dump_config, load_config
from flows.pipeline import stage_configs


def test_defaults_derive_absolute_paths_from_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = PipelineConfig(workdir="w")
    # Absolute: Dask workers do not share this process's working directory.
    assert config.train.dataset_path == tmp_path / "w/data/regression"
    assert config.recall.dataset_path == tmp_path / "w/data/hopfield"
    assert config.recall.output_path == tmp_path / "w/recall/hebbian-async"
    assert config.data.regression_path == config.train.dataset_path


def test_yaml_file_overrides_defaults_and_cli_overrides_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("workdir: runs\ntrain:\n  max_epochs: 4\n  hidden_layer_sizes: [8, 4]\n")
    config = load_config(path, "pipeline", dask_address="tcp://10.0.0.1:8786")
    assert config.train.max_epochs == 4 and config.train.hidden_layer_sizes == [8, 4]
    # The stages inherit the pipeline's workdir and cluster unless they set their own.
    assert config.train.workdir == Path("runs").absolute() == config.recall.workdir
    assert config.data.dask_address == "tcp://10.0.0.1:8786"
    assert config.train.activation == "tanh"  # untouched default
    # What --print-config shows reads back to the same config.
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(dump_config(config))
    assert load_config(dumped, "pipeline") == config


def test_unknown_key_is_refused_listing_the_allowed_ones(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 4\n")
    with pytest.raises(ConfigError, match=r"train\.epochs: unknown key; allowed: .*max_epochs"):
        load_config(path, "pipeline")


def test_bad_values_name_the_field_and_the_allowed_values():
    with pytest.raises(ConfigError, match=r"solver: Input should be 'adam' or 'sgd'.*'lbfgs'"):
        load_config(None, "train_bp", solver="lbfgs")
    with pytest.raises(ConfigError, match=r"max_epochs: .*greater than 0"):
        load_config(None, "train_bp", max_epochs=0)


def test_missing_or_malformed_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml", "train_bp")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, "pipeline")
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(bad, "pipeline")


def test_pipeline_stages_agree_on_dataset_split_and_scaler():
    config = PipelineConfig.model_validate(
        {
            "workdir": "w",
            "train": {"validation_fraction": 0.25, "random_state": 7, "scaler": "minmax"},
        }
    )
    data, train, recall = stage_configs(config, "inproc://x")
    assert train.dataset_path == data.regression_path
    assert recall.dataset_path == data.hopfield_path
    assert (data.validation_fraction, data.split_seed, data.scaler) == (0.25, 7, "minmax")
    assert {data.dask_address, train.dask_address, recall.dask_address} == {"inproc://x"}
    assert isinstance(train, TrainConfig)


def test_pattern_shape_reads_from_yaml_and_must_be_two_positive_integers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("recall:\n  pattern_shape: [7, 5]\n")
    assert load_config(path, "pipeline").recall.pattern_shape == (7, 5)
    assert load_config(None, "recall_hopfield").pattern_shape is None  # no pictures by default
    with pytest.raises(ConfigError, match=r"pattern_shape: .*\[0, 5\] must be two positive"):
        load_config(None, "recall_hopfield", pattern_shape=[0, 5])
    with pytest.raises(ConfigError, match=r"pattern_shape"):
        load_config(None, "recall_hopfield", pattern_shape=[7, 5, 1])
