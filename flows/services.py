"""Fail fast when a service the run needs does not answer, naming its URI.

Checked before a flow starts, so nothing is half-written: the MLflow tracking
server (an ``http(s)://`` ``MLFLOW_TRACKING_URI``), the Prefect API
(``PREFECT_API_URL``) and the Dask scheduler (``--dask-address``). Each must
answer within ``timeout`` seconds (``--service-timeout``, default 30). The same
timeout bounds each MLflow and Prefect request during the run: a server that
goes away mid-run fails the run (exit 1, one line naming the URI) with its
checkpoints kept, and the same command resumes once the server is back.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 30.0


class ServiceUnavailable(ConnectionError):
    """A tracking, orchestration or cluster service did not answer."""


def request_timeouts(timeout: float) -> None:
    """Bound MLflow's and Prefect's requests by ``timeout`` (where the user has not set them)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(timeout))))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("PREFECT_API_REQUEST_TIMEOUT", str(float(timeout)))


def _http_answers(url: str, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            reply.read(1)
    except urllib.error.HTTPError:
        return  # it answered: an HTTP error status still means a server is there
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceUnavailable(f"{reason}") from exc


def _tcp_answers(address: str, timeout: float) -> None:
    parts = urlsplit(address)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"--dask-address {address!r} must be a URL like tcp://127.0.0.1:8786")
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            pass
    except OSError as exc:
        raise ServiceUnavailable(str(exc)) from exc


def check_services(dask_address: str | None, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Raise :class:`ServiceUnavailable` (one line: service, URI, what to check) if one is down."""
    checks = []
    mlflow_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if mlflow_uri.startswith(("http://", "https://")):
        hint = "start `mlflow server` there or fix MLFLOW_TRACKING_URI"
        checks.append(("MLflow tracking server", mlflow_uri, "/health", hint))
    prefect_url = os.environ.get("PREFECT_API_URL", "")
    if prefect_url:
        hint = "start `prefect server start` there or fix PREFECT_API_URL"
        checks.append(("Prefect API", prefect_url, "/health", hint))
    for name, uri, path, hint in checks:
        try:
            _http_answers(uri.rstrip("/") + path, timeout)
        except ServiceUnavailable as exc:
            raise ServiceUnavailable(
                f"{name} at {uri} does not answer within {timeout:g} s ({exc}); {hint}"
            ) from None
    if dask_address:
        try:
            _tcp_answers(dask_address, timeout)
        except ServiceUnavailable as exc:
            raise ServiceUnavailable(
                f"Dask scheduler at {dask_address} does not answer within {timeout:g} s "
                f"({exc}); start `dask scheduler` there or fix --dask-address"
            ) from None
