"""requirements/test.lock, which `make test` installs, must satisfy pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def lock_pins(text: str) -> dict[str, str]:
    """Name -> exact version of every ``name==version`` line of a lock file."""
    pins = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line.strip())
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def unmet(requirements: list[str], pins: dict[str, str]) -> list[str]:
    """The requirements the pinned versions do not satisfy, with what was pinned."""
    problems = []
    for text in requirements:
        req = Requirement(text)
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{text}: not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{text}: the lock pins {version}")
    return problems


def test_lock_pins_every_dependency_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    pins = lock_pins((ROOT / "requirements" / "test.lock").read_text())
    assert unmet(wanted, pins) == [], "run `make lock` after changing pyproject.toml"


def test_unmet_names_what_is_missing_or_out_of_range():
    pins = lock_pins("numpy==2.4.1\n    # via nnpipe\nMLflow==3.7.0\n")
    assert unmet(["numpy>=2.4,<3", "mlflow>=3.8", "pyarrow>=25"], pins) == [
        "mlflow>=3.8: the lock pins 3.7.0",
        "pyarrow>=25: not in the lock",
    ]


def test_version_is_the_one_in_pyproject():
    import nnpipe

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert nnpipe.__version__ == project["version"]
