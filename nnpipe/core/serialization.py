"""Model files: one ``.npz`` per object, written atomically, loaded without pickle.

A file holds plain numeric arrays plus one JSON metadata blob (stored as a
``uint8`` array named ``__meta__``). Nothing in it can execute code on load:
``np.load(..., allow_pickle=False)`` refuses object arrays, and the metadata is
parsed with ``json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

FORMAT_VERSION = 1
_META_KEY = "__meta__"

# mkstemp creates its file 0600; a file written atomically gets the mode open()
# would give it, as other processes (maybe other users: Dask workers, a model
# server) read it. The umask can only be read by setting it: read once, at import,
# setting the strictest value meanwhile.
_UMASK = os.umask(0o077)
os.umask(_UMASK)


class ModelFileError(ValueError):
    """A model or scaler file is missing, corrupt, tampered with or of the wrong kind."""


def file_name(path: Any) -> str:
    """How a path, or a file object standing for one (its ``name``), is shown in messages."""
    if hasattr(path, "read") or hasattr(path, "write"):
        return str(getattr(path, "name", "<memory>"))
    return str(path)


def save_npz(path: Any, arrays: Mapping[str, np.ndarray], meta: Mapping) -> Any:
    """Write ``arrays`` and JSON-able ``meta`` to ``path`` atomically (temp file + rename).

    ``path`` may also be a binary file object (an object store's in-memory upload).
    """
    if _META_KEY in arrays:
        raise ValueError(f"array name {_META_KEY!r} is reserved for metadata")
    payload: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"array {name!r} has dtype object; only numeric arrays are saved")
        payload[name] = arr
    full_meta = {"format_version": FORMAT_VERSION, **meta}
    payload[_META_KEY] = np.frombuffer(json.dumps(full_meta).encode("utf-8"), dtype=np.uint8)
    if hasattr(path, "write"):
        np.savez(path, **payload)
        return path
    return atomic_write(path, lambda fh: np.savez(fh, **payload))


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync, then rename it over ``path``.

    Readers see the old file or the new one, never half of one; if ``write`` fails,
    whatever was at ``path`` before is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_npz(path: Any, *, kind: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_npz`; check its ``kind`` when one is given.

    ``path`` may also be a binary file object (its ``name`` shown in errors).
    """
    if hasattr(path, "read"):
        magic = path.read(4)
        path.seek(0)
        source, path = path, file_name(path)
    else:
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"model file {str(path)!r} does not exist")
        with open(path, "rb") as fh:
            magic = fh.read(4)
        source = path
    # np.load would take any non-zip file for a pickle; say what it really is.
    if magic != b"PK\x03\x04":
        raise ModelFileError(f"{str(path)!r} is not a readable .npz file (not a zip archive)")
    try:
        # Our own file handle: np.load leaves the one it opens unclosed when the zip is bad.
        with contextlib.ExitStack() as stack:
            if isinstance(source, Path):
                source = stack.enter_context(open(source, "rb"))
            data = stack.enter_context(np.load(source, allow_pickle=False))
            arrays = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelFileError(f"{str(path)!r} is not a readable .npz file: {exc}") from exc
    except ValueError as exc:  # object arrays refused by allow_pickle=False
        raise ModelFileError(f"{str(path)!r} holds non-numeric data and is refused: {exc}") from exc
    raw = arrays.pop(_META_KEY, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{str(path)!r} has no nnpipe metadata; was it written by nnpipe?")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{str(path)!r} has corrupt metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise ModelFileError(f"{str(path)!r} has corrupt metadata: not a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{str(path)!r} has format version {version!r}; this nnpipe reads {FORMAT_VERSION}"
        )
    if kind is not None and meta.get("kind") != kind:
        raise ModelFileError(f"{str(path)!r} holds a {meta.get('kind')!r}, expected a {kind!r}")
    return arrays, meta


class NpzFileMixin:
    """``save``/``load`` for a class with ``to_arrays`` and ``from_arrays``: one ``.npz`` each.

    ``to_arrays()`` returns (arrays, JSON-able meta with ``kind`` = the class name);
    ``from_arrays(arrays, meta, path)`` rebuilds the object (``path`` names it in errors).
    """

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted object to one ``.npz`` atomically (temp file + rename)."""
        arrays, meta = self.to_arrays()  # type: ignore[attr-defined]
        save_npz(path, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike):
        """Read a file :meth:`save` wrote (no pickle; its kind and array shapes checked)."""
        arrays, meta = load_npz(path, kind=cls.__name__)
        return cls.from_arrays(arrays, meta, file_name(path))  # type: ignore[attr-defined]


def params_to_json(params: Mapping[str, Any], owner: str = "estimator") -> dict[str, Any]:
    """An estimator's ``get_params()`` as JSON values: the one serializer of every save path.

    NumPy scalars become Python ones (``np.int64`` -> int, ``np.float32`` -> float,
    ``np.bool_`` -> bool), a dtype or scalar type its name, tuples, lists and arrays
    lists, and a ``numpy.random.Generator`` None (its effect is saved as state by
    the estimator). Anything else is a TypeError naming the parameter.
    """
    return {k: _param_to_json(v, f"{owner} parameter {k}") for k, v in params.items()}


def params_from_json(params: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`params_to_json` for constructors: JSON lists come back as tuples."""
    return {name: _list_to_tuple(value) for name, value in params.items()}


def _param_to_json(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if isinstance(value, tuple | list | np.ndarray):
        return [_param_to_json(v, where) for v in value]
    if isinstance(value, np.random.Generator):
        return None
    raise TypeError(
        f"{where}={value!r} cannot be saved: allowed are None, bool, int, float, str, "
        "a dtype, or a sequence of those (NumPy scalars included)"
    )


def _list_to_tuple(value: Any) -> Any:
    return tuple(_list_to_tuple(v) for v in value) if isinstance(value, list) else value


def require(arrays: Mapping[str, np.ndarray], name: str, shape: tuple, path: str | os.PathLike):
    """Return ``arrays[name]`` after checking it exists and has ``shape`` (None = any size)."""
    if name not in arrays:
        raise ModelFileError(f"{str(path)!r} is missing array {name!r}")
    arr = arrays[name]
    if len(arr.shape) != len(shape) or any(
        want is not None and got != want for got, want in zip(arr.shape, shape, strict=True)
    ):
        raise ModelFileError(
            f"{str(path)!r}: array {name!r} has shape {arr.shape}, expected {shape}"
        )
    return arr
