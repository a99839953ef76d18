"""nnpipe.data.storage: one set of file operations for local paths and fsspec URLs."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from nnpipe.core.scalers import StandardScaler
from nnpipe.core.serialization import ModelFileError
from nnpipe.data import storage


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path):
    return str(tmp_path) if request.param == "local" else f"memory://{uuid.uuid4().hex}"


def test_urls_stay_strings_and_local_paths_stay_paths():
    assert storage.is_url("s3://b/k") and storage.is_url("file:///x")
    assert not storage.is_url("/tmp/x") and not storage.is_url(Path("rel/x"))
    assert storage.join("s3://b/k/", "models", "m.npz") == "s3://b/k/models/m.npz"
    assert storage.join(Path("/w"), "models") == Path("/w/models")
    assert storage.basename("s3://b/k/data/reg/") == "reg"


def test_files_are_written_listed_read_and_removed_alike(root):
    d = storage.join(root, "dir")
    assert storage.list_names(d) == []
    storage.makedirs(d)
    storage.write_bytes(storage.join(d, "b.json"), b"{}")
    storage.write_bytes(storage.join(d, "a.bin"), b"\x00" * 5)
    assert storage.list_names(d) == ["a.bin", "b.json"]
    assert storage.read_bytes(storage.join(d, "a.bin")) == b"\x00" * 5
    storage.remove(storage.join(d, "a.bin"))
    storage.remove(storage.join(d, "a.bin"))  # already gone: nothing
    assert storage.list_names(d) == ["b.json"] and storage.exists(storage.join(d, "b.json"))
    storage.remove_tree(d)
    assert not storage.exists(storage.join(d, "b.json"))


def test_a_scaler_saved_to_a_url_loads_back_the_same(root):
    scaler = StandardScaler().fit(np.arange(12.0).reshape(4, 3))
    path = storage.join(root, "s", "x_scaler.npz")
    storage.makedirs(storage.join(root, "s"))
    storage.save_file(scaler.save, path)
    back = storage.load_file(StandardScaler.load, path)
    assert np.array_equal(back.mean_, scaler.mean_) and np.array_equal(back.scale_, scaler.scale_)
    with pytest.raises(ModelFileError, match="does not exist"):
        storage.load_file(StandardScaler.load, storage.join(root, "s", "missing.npz"))
