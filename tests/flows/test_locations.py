"""Config locations: credentials in storage_options are masked wherever a config is shown."""

from __future__ import annotations

from flows.config import TrainConfig
from flows.locations import credential_keys, masked


def test_credentials_are_masked_and_named():
    options = {"key": "AKIA", "secret": "s", "client_kwargs": {"endpoint_url": "http://h:9000"}}
    assert masked(options) == {
        "key": "***",
        "secret": "***",
        "client_kwargs": {"endpoint_url": "http://h:9000"},
    }
    assert credential_keys({"client_kwargs": {"aws_session_token": "t"}, "anon": False}) == [
        "client_kwargs.aws_session_token"
    ]


def test_a_config_keeps_url_locations_and_shows_credentials_masked():
    config = TrainConfig(workdir="s3://b/w/", storage_options={"secret": "hush"})
    assert config.workdir == "s3://b/w" and config.storage_options == {"secret": "hush"}
    assert str(config.checkpoint_dir("f" * 64)).startswith("s3://b/w/checkpoints/train_bp-")
    assert config.model_dump(mode="json")["storage_options"] == {"secret": "***"}
