"""A full disk while writing a checkpoint: the error is named, the previous one survives."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from nnpipe import MLPRegressor
from nnpipe.core import serialization
from nnpipe.training.state import STATE_FILE, TrainingState


def test_enospc_writing_a_checkpoint_keeps_the_previous_one_intact(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), rng.normal(size=64)
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=1, random_state=0)
    state = TrainingState(keep_last=2)
    for epoch in (1, 2):
        model.partial_fit(X, y)
        state.epochs_done = epoch
        state.history.append({"train_loss": 1.0 / epoch, "val_loss": None})
        state.save(tmp_path, model)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    real_write = serialization.atomic_write

    def disk_full(path, write):
        def half_then_enospc(fh):
            fh.write(b"\0" * 100)  # the temp file gets some bytes, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

        return real_write(path, half_then_enospc)

    monkeypatch.setattr(serialization, "atomic_write", disk_full)
    model.partial_fit(X, y)
    state.epochs_done = 3
    state.history.append({"train_loss": 0.1, "val_loss": None})
    with pytest.raises(OSError, match="No space left"):
        state.save(tmp_path, model)
    monkeypatch.undo()

    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no temp file left, nothing replaced or removed
    assert json.loads((tmp_path / STATE_FILE).read_text())["epochs_done"] == 2
    resumed = TrainingState(keep_last=2)
    assert resumed.load(tmp_path, MLPRegressor) is not None and resumed.epochs_done == 2
