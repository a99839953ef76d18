"""Locations in a config: local directories or fsspec URLs, and the credentials beside them.

A local path is made absolute (Dask workers run in other directories); a URL
such as ``s3://bucket/prefix`` stays the string it is (``Path`` would fold its
``//``). ``storage_options`` may hold credentials: wherever a config is shown as
JSON or YAML (``--print-config``, MLflow parameters and ``config.json``, Prefect's
flow-run parameters) their values are replaced by ``***``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator

from nnpipe.data import storage


def _location(value: Any) -> Any:
    # An fsspec URL (s3://bucket/prefix) stays a string: Path would fold its "//".
    if isinstance(value, str) and storage.is_url(value):
        return value.rstrip("/")
    return Path(value) if isinstance(value, str) else value  # made absolute by the config


# A local directory (the config makes it absolute) or an fsspec URL such as s3://bucket/prefix.
Location = Annotated[Path | str, BeforeValidator(_location)]

# storage_options keys whose values are credentials: shown masked wherever the
# config is printed or logged (--print-config, MLflow params, Prefect parameters).
_SECRET_WORDS = ("key", "secret", "token", "password", "credential")
MASK = "***"


def masked(options: Any) -> Any:
    """``options`` with the value of every credential-like key replaced by ``***``."""
    if isinstance(options, dict):
        return {
            k: MASK if any(w in str(k).lower() for w in _SECRET_WORDS) else masked(v)
            for k, v in options.items()
        }
    if isinstance(options, list):
        return [masked(v) for v in options]
    return options


def credential_keys(options: Any, prefix: str = "") -> list[str]:
    """The dotted names of the credential-like keys in ``options`` (nested dicts included)."""
    found: list[str] = []
    if isinstance(options, dict):
        for k, v in options.items():
            name = f"{prefix}{k}"
            if any(w in str(k).lower() for w in _SECRET_WORDS):
                found.append(name)
            else:
                found += credential_keys(v, f"{name}.")
    return found
