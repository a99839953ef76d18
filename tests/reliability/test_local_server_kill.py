"""SIGKILL of a command: the reaper ends what the command started, not the reused server."""

from __future__ import annotations

import json

import pytest

from flows import local_server

from .conftest import nnpipe, sigkill_leaves_nothing, start, wait_for_epochs


@pytest.mark.slow
def test_sigkill_reaps_the_command_but_keeps_the_reused_server_for_the_next(
    datasets, tmp_path, env
):
    home = tmp_path / "server"
    env = {k: v for k, v in env.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env[local_server.HOME_VARIABLE] = str(home)
    config = tmp_path / "train.yaml"
    config.write_text("batch_size: 32\nhidden_layer_sizes: [32, 32]\n")
    args = ["train", "--config", config, "--dataset", datasets / "regression",
            "--epochs", 12, "--workdir", tmp_path / "work", "--json"]  # fmt: skip
    try:
        proc = start(*args, env=env, cwd=tmp_path)
        wait_for_epochs(tmp_path / "work", proc, 2)
        server = local_server.read_state(home)
        commands = " ".join(sigkill_leaves_nothing(proc))
        assert "reaper.py" in commands and "uvicorn" not in commands, commands
        assert local_server.process_of(server) is not None, "the reaper ended the server"
        assert local_server.healthy(server.url)

        again = nnpipe(*args, env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["summary"]["resumed_from"] >= 2
        assert local_server.read_state(home) == server  # the same server, reused

        stop = nnpipe("server", "stop", env=env, cwd=tmp_path)
        assert stop.returncode == 0 and f"pid {server.pid}" in stop.stdout, stop.stdout
        assert local_server.process_of(server) is None
    finally:
        nnpipe("server", "stop", env=env, cwd=tmp_path)
