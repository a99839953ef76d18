"""Model files: atomic writes, no pickle, readable errors."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest

from nnpipe.core.serialization import ModelFileError, load_npz, require, save_npz


def test_round_trip_arrays_and_meta(tmp_path):
    path = save_npz(tmp_path / "m.npz", {"w": np.arange(6.0).reshape(2, 3)}, {"kind": "X", "a": 1})
    arrays, meta = load_npz(path, kind="X")
    assert meta["a"] == 1 and meta["kind"] == "X"
    np.testing.assert_array_equal(arrays["w"], np.arange(6.0).reshape(2, 3))


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "m.npz"
    save_npz(path, {"w": np.ones(3)}, {"kind": "X"})
    with pytest.raises(TypeError, match="dtype object"):
        save_npz(path, {"w": np.array([object()])}, {"kind": "X"})
    arrays, _ = load_npz(path)
    np.testing.assert_array_equal(arrays["w"], np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(
        path, payload=np.array([{"a": 1}], dtype=object), __meta__=np.frombuffer(b"{}", np.uint8)
    )
    with pytest.raises(ModelFileError, match="refused"):
        load_npz(path)


def test_plain_npz_without_metadata_is_rejected(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.ones(2))
    with pytest.raises(ModelFileError, match="no nnpipe metadata"):
        load_npz(path)


def test_missing_file_named(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_npz(tmp_path / "nope.npz")


def test_require_checks_shape(tmp_path):
    arrays = {"w": np.ones((2, 3))}
    assert require(arrays, "w", (2, None), "f").shape == (2, 3)
    with pytest.raises(ModelFileError, match=r"shape \(2, 3\), expected \(3, 3\)"):
        require(arrays, "w", (3, 3), "f")
    with pytest.raises(ModelFileError, match="missing array 'b'"):
        require(arrays, "b", (1,), "f")


def test_broken_zip_is_named_and_its_file_closed(tmp_path):
    path = tmp_path / "model.npz"
    save_npz(path, {"w": np.ones(3)}, {"kind": "x"})
    path.write_bytes(path.read_bytes()[:40])  # a zip header, then nothing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(ModelFileError, match=r"model\.npz.* is not a readable \.npz file"):
            load_npz(path)
        gc.collect()  # an unclosed handle warns when it is collected
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
