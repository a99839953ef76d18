"""Shared fixtures: one Prefect test server per session, MLflow kept in temporary dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before Prefect is imported anywhere: analytics off (and its SQLite lock noise).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

# tests/containers runs the image under podman; `make container-test` builds the
# image and names it here. `make test` leaves it to that target.
collect_ignore = [] if os.environ.get("NNPIPE_CONTAINER_IMAGE") else ["containers"]


# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadscope`).
# A unit of work is a module, so a module-scoped fixture is built once; a package
# whose tests share a package-scoped fixture (servers, a cluster) is one unit too.
SHARED_PACKAGES = ("tests/system/", "tests/training/")
# Units are handed out in collection order and a worker queues the next unit behind
# the test it runs: the longest tests are started first, so that the other worker
# fills the time they take instead of one worker running them alone at the end.
LONGEST_FIRST = (
    "tests/test_readme.py::test_readme_demo_report_and_shell_blocks_run_in_order",
    "tests/reliability/test_server_loss.py",
    "tests/system/",
    "tests/test_readme.py",
    "tests/reliability/",
    "tests/tracking/test_services.py",
)


def work_unit(nodeid: str) -> str:
    """The tests of one unit run on one worker, in order."""
    return next((p for p in SHARED_PACKAGES if nodeid.startswith(p)), nodeid.split("::")[0])


def _rank(nodeid: str) -> int:
    return next(
        (i for i, prefix in enumerate(LONGEST_FIRST) if nodeid.startswith(prefix)),
        len(LONGEST_FIRST),
    )


def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput"):  # not a pytest-xdist worker: as collected
        return
    for item in items:
        for defs in item._fixtureinfo.name2fixturedefs.values():
            package = defs[-1].baseid + "/"
            if defs[-1].scope == "package" and not package.startswith(SHARED_PACKAGES):
                raise pytest.UsageError(f"add {package!r} to SHARED_PACKAGES in {__file__}")
    units = {}
    for item in items:
        units.setdefault(work_unit(item.nodeid), []).append(item)
    ordered = sorted(units.values(), key=lambda unit: min(_rank(i.nodeid) for i in unit))
    items[:] = [i for unit in ordered for i in sorted(unit, key=lambda i: _rank(i.nodeid))]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with the units of ``work_unit``, in the order of the items."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False
    return Scheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def _mlflow_outside_the_repo(tmp_path_factory):
    """Point the default MLflow store at a temporary SQLite file for the whole session.

    Code that falls back to ``MLFLOW_TRACKING_URI`` (or to ``<cwd>/mlflow.db``) never
    writes into the repository. Tests wanting their own store override it.
    """
    root = tmp_path_factory.mktemp("mlflow-session")
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        yield root


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server (its own SQLite database) shared by the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def prefect_url(prefect_harness) -> str:
    """The session's Prefect test server, for commands run as processes."""
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> Path:
    """A directory holding one SQLite MLflow store (mlflow.db) and its artifacts."""
    return tmp_path_factory.mktemp("mlflow-store")


@pytest.fixture
def mlflow_uri(mlflow_store, monkeypatch) -> str:
    """``MLFLOW_TRACKING_URI`` set to the session store; cwd moved beside it."""
    uri = f"sqlite:///{mlflow_store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(mlflow_store)
    return uri
