"""Where nnpipe reads and writes: a local path, or an fsspec URL such as ``s3://bucket/prefix``.

A local path keeps the pathlib / os code it always had (no fsspec layer on that
path). A URL goes through fsspec; for ``s3://`` that is s3fs, which takes the
endpoint and credentials from ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` (botocore's own rules) unless ``storage_options`` say
otherwise.

Writes are whole or nothing on both. A local file is written to a temporary
name and renamed (:func:`nnpipe.core.serialization.atomic_write`). An object
store has no rename (fsspec's ``mv`` is a copy then a delete), but it publishes
an object only once its upload is complete: a file is built in memory and sent
as one object (``pipe_file``: one PUT), so a reader sees the old object, the
new one or none, and a writer killed half-way leaves nothing a rerun would take
for finished work.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pyarrow.fs as pafs
from fsspec.implementations.local import LocalFileSystem

from nnpipe.core.serialization import ModelFileError, atomic_write

# An S3 endpoint that does not answer must fail in seconds, not minutes: s3fs's
# own defaults (5 retries of botocore's 5 attempts, 15 s read timeout) took 417 s
# here against a socket that accepts and never answers; these take 10 s per call,
# and _check_answers stops a command after 5 s before its first call. Any of them
# given in ``storage_options`` wins.
S3_DEFAULTS: dict[str, Any] = {
    "config_kwargs": {
        "connect_timeout": 5,
        "read_timeout": 5,
        "retries": {"max_attempts": 2, "mode": "standard"},
    }
}
S3_RETRIES = 1  # s3fs's retry loop around botocore's (a class attribute, not an option)
PROBE_TIMEOUT = 5.0  # seconds for an endpoint's first answer (see _check_answers)


class StorageError(ValueError):
    """A path the store refuses or cannot reach; the message names the path and why."""


def is_url(path: Any) -> bool:
    """Whether ``path`` is an fsspec URL (``s3://...``) rather than a plain local path."""
    text = os.fspath(path) if not isinstance(path, str) else path
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.isidentifier()


def join(base: str | os.PathLike, *parts: str) -> str | Path:
    """``base`` / ``parts``: a URL stays a string, a local path a :class:`Path`."""
    if is_url(base):
        return "/".join([os.fspath(base).rstrip("/"), *parts])
    return Path(base).joinpath(*parts)


def basename(path: str | os.PathLike) -> str:
    """The last part of a path or URL."""
    return os.fspath(path).rstrip("/").rsplit("/", 1)[-1]


def _options(protocol: str, storage_options: dict | None) -> dict[str, Any]:
    options = copy.deepcopy(storage_options or {})
    if protocol in ("s3", "s3a"):
        # Other processes (the Dask workers) write where this one has listed: a
        # cached listing would hide their files (FileNotFoundError on a recall
        # result that is there), so every listing asks the store.
        options.setdefault("use_listings_cache", False)
        config = {**S3_DEFAULTS["config_kwargs"], **(options.get("config_kwargs") or {})}
        options["config_kwargs"] = config
    return options


def resolve_filesystem(
    path: str | os.PathLike, storage_options: dict | None = None
) -> tuple[Any, Any, str]:
    """Return (fsspec filesystem, filesystem for pyarrow, root path) for a path or URL."""
    text = os.fspath(path)
    protocol = text.partition("://")[0] if is_url(text) else "file"
    fs, root = fsspec.core.url_to_fs(text, **_options(protocol, storage_options))
    if isinstance(fs, LocalFileSystem):
        return fs, pafs.LocalFileSystem(), root
    if hasattr(fs, "retries"):
        fs.retries = S3_RETRIES
        _check_answers(_endpoint(fs), text)
    return fs, fs, root  # pyarrow wraps an fsspec filesystem itself


_ANSWERED: set[str] = set()  # endpoints that answered this process once


def _check_answers(endpoint: str, path: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Fail at once, naming the endpoint, when it does not answer one plain HTTP request.

    Each S3 call would otherwise spend its timeouts and retries (about 10 s) before
    failing, and a command makes several before its first error.
    """
    if endpoint in _ANSWERED or not endpoint.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(endpoint, timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # any HTTP answer (403 without credentials, 400...) is an answer
    except (OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StorageError(
            f"{path!r}: the store at {endpoint} does not answer ({reason}); check "
            "AWS_ENDPOINT_URL or storage_options client_kwargs.endpoint_url"
        ) from exc
    _ANSWERED.add(endpoint)


def _endpoint(fs: Any) -> str:
    endpoint = getattr(fs, "endpoint_url", None) or (fs.client_kwargs or {}).get("endpoint_url")
    return endpoint or os.environ.get("AWS_ENDPOINT_URL") or "the default AWS endpoint"


def _why(exc: BaseException, fs: Any) -> str | None:
    """What a store's exception means for the user, or None when it is not a store problem."""
    text = str(exc)
    name = type(exc).__name__
    if isinstance(exc, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        return (
            f"access denied ({text.splitlines()[0] if text else name}); check the credentials "
            "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or storage_options key / secret) and "
            "that they may read and write there"
        )
    if "bucket does not exist" in text or "NoSuchBucket" in text:
        return f"the bucket does not exist at {_endpoint(fs)}"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError") or (
        isinstance(exc, TimeoutError | ConnectionError)
    ):
        return f"the store at {_endpoint(fs)} does not answer ({name})"
    return None


def shown(fs: Any, path: str) -> str:
    """``path`` as the user wrote it: with its ``s3://`` when ``fs`` is a store."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def why_missing(fs: Any, path: str) -> str:
    """``"; the bucket ... does not exist at ..."`` when that is why ``path`` is not there."""
    bucket = path.split("/", 1)[0]
    if isinstance(fs, LocalFileSystem) or not hasattr(fs, "endpoint_url") or not bucket:
        return ""
    with remote_errors(path, fs):
        if fs.exists(bucket):
            return ""
    return f"; the bucket {bucket!r} does not exist at {_endpoint(fs)}"


@contextlib.contextmanager
def remote_errors(path: str | os.PathLike, fs: Any = None) -> Iterator[None]:
    """Turn a store's refusal (missing bucket, denied, no answer) into one StorageError line."""
    try:
        yield
    except ValueError:
        raise  # nnpipe's own input errors (and StorageError) say what they mean already
    except Exception as exc:
        why = _why(exc, fs) if fs is not None and not isinstance(fs, LocalFileSystem) else None
        if why is None:
            raise
        raise StorageError(f"{os.fspath(path)!r}: {why}") from exc


def _remote(path: str | os.PathLike, storage_options: dict | None) -> tuple[Any, str]:
    fs, _, p = resolve_filesystem(path, storage_options)
    return fs, p


def exists(path: str | os.PathLike, storage_options: dict | None = None) -> bool:
    """Whether a file (or, on a store, any object under the prefix) is at ``path``."""
    if not is_url(path):
        return os.path.exists(path)
    fs, p = _remote(path, storage_options)
    with remote_errors(path, fs):
        return bool(fs.exists(p))


def makedirs(path: str | os.PathLike, storage_options: dict | None = None) -> None:
    """Create a local directory; nothing on a store (prefixes need no creating).

    s3fs's ``makedirs`` would create a missing bucket: a typo must fail instead.
    """
    if not is_url(path):
        Path(path).mkdir(parents=True, exist_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes, storage_options: dict | None = None) -> None:
    """Write ``data`` to ``path`` whole or not at all (rename locally, one object remotely)."""
    if not is_url(path):
        atomic_write(path, lambda fh: fh.write(data))
        return
    fs, p = _remote(path, storage_options)
    with remote_errors(path, fs):
        fs.pipe_file(p, data)


def read_bytes(path: str | os.PathLike, storage_options: dict | None = None) -> bytes:
    """The bytes of the file at ``path`` (FileNotFoundError when there is none)."""
    if not is_url(path):
        return Path(path).read_bytes()
    fs, p = _remote(path, storage_options)
    with remote_errors(path, fs):
        return fs.cat_file(p)


def remove(path: str | os.PathLike, storage_options: dict | None = None) -> None:
    """Delete the file at ``path``; nothing when it is not there."""
    if not is_url(path):
        Path(path).unlink(missing_ok=True)
        return
    fs, p = _remote(path, storage_options)
    with remote_errors(path, fs), contextlib.suppress(FileNotFoundError):
        fs.rm_file(p)


def remove_tree(path: str | os.PathLike, storage_options: dict | None = None) -> None:
    """Delete a directory (every object under a prefix) and what it holds, if there."""
    if not is_url(path):
        if os.path.exists(path):
            shutil.rmtree(path)
        return
    fs, p = _remote(path, storage_options)
    with remote_errors(path, fs):
        if fs.exists(p):
            fs.rm(p, recursive=True)


def list_names(path: str | os.PathLike, storage_options: dict | None = None) -> list[str]:
    """Names of the files directly in directory ``path``, sorted; [] when it is not there."""
    if not is_url(path):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            return sorted(p.name for p in Path(path).iterdir() if p.is_file())
        return []
    fs, p = _remote(path, storage_options)
    with remote_errors(path, fs):
        try:
            entries = fs.ls(p, detail=True, refresh=True)
        except FileNotFoundError:
            return []
    return sorted(basename(e["name"]) for e in entries if e.get("type") == "file")


def save_file(
    save: Callable[[Any], object], path: str | os.PathLike, storage_options: dict | None = None
) -> None:
    """``save(path)`` for a local path; remotely ``save(buffer)``, then one object from it.

    ``save`` is an object's own ``save`` (model, scaler, network): it writes a local
    file atomically, or into a binary file object.
    """
    if not is_url(path):
        save(path)
        return
    buffer = io.BytesIO()
    save(buffer)
    write_bytes(path, buffer.getvalue(), storage_options)


def load_file(
    load: Callable[[Any], Any], path: str | os.PathLike, storage_options: dict | None = None
) -> Any:
    """``load(path)`` for a local path; remotely ``load`` of the object's bytes in memory."""
    if not is_url(path):
        return load(path)
    try:
        data = read_bytes(path, storage_options)
    except FileNotFoundError:
        raise ModelFileError(f"model file {os.fspath(path)!r} does not exist") from None
    buffer = io.BytesIO(data)
    buffer.name = os.fspath(path)  # named in load's error messages
    return load(buffer)


@contextlib.contextmanager
def local_copy(path: str | os.PathLike, storage_options: dict | None = None) -> Iterator[Path]:
    """A local file holding ``path``'s bytes (``path`` itself when local), for APIs needing one."""
    if not is_url(path):
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="nnpipe-") as tmp:
        local = Path(tmp) / basename(path)
        local.write_bytes(read_bytes(path, storage_options))
        yield local
