"""The layer rule of DESIGN.md: imports point down only.

Checked twice: at run time (import a package in a fresh interpreter and look at
``sys.modules``) and statically (every ``import`` statement in the package's
files, including ones inside functions that a run-time check would miss).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "nnpipe": {"dask", "distributed", "pyarrow", "pandas", "prefect", "mlflow"},
    "nnpipe.core": {"dask", "distributed", "pyarrow", "pandas", "prefect", "mlflow"},
    "nnpipe.data": {"mlflow", "prefect"},
    "nnpipe.tracking": {"prefect"},
}

# Only these packages may import the heavy dependencies directly.
OWNERS = {
    "dask": "nnpipe/data",
    "distributed": "nnpipe/data",
    "pyarrow": "nnpipe/data",
    "mlflow": "nnpipe/tracking",
}


def loaded_top_modules(statement: str) -> set[str]:
    """Top-level module names present in sys.modules after running ``statement`` fresh."""
    code = (
        f"import sys, json\n{statement}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def imported_names(package_dir: Path) -> dict[str, set[str]]:
    """Map each imported top-level module name to the files importing it."""
    found: dict[str, set[str]] = {}
    for path in package_dir.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(
                    str(path.relative_to(package_dir.parent))
                )
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_importing_package_loads_no_forbidden_dependency(package):
    loaded = loaded_top_modules(f"import {package}")
    assert not (loaded & FORBIDDEN[package]), (
        f"importing {package} pulled in {sorted(loaded & FORBIDDEN[package])}"
    )


def test_core_files_import_only_numpy_and_stdlib():
    allowed = set(sys.stdlib_module_names) | {"numpy", "nnpipe", "threadpoolctl"}
    imports = imported_names(ROOT / "nnpipe" / "core")
    offenders = {name: files for name, files in imports.items() if name not in allowed}
    assert not offenders, f"nnpipe.core imports outside NumPy + stdlib: {offenders}"


@pytest.mark.parametrize("dependency", sorted(OWNERS))
def test_heavy_dependency_imported_only_by_its_owner(dependency):
    imports = imported_names(ROOT / "nnpipe")
    stray = {f for f in imports.get(dependency, set()) if not f.startswith(OWNERS[dependency])}
    assert not stray, f"{dependency} imported outside {OWNERS[dependency]}: {sorted(stray)}"


def test_layer_check_detects_a_violation(tmp_path):
    # The checks above must be able to fail: plant a core-like package importing dask.
    bad = tmp_path / "fakecore"
    bad.mkdir()
    (bad / "__init__.py").write_text("def f():\n    import dask.array\n")
    assert "dask" in imported_names(bad)
    assert "dask" in loaded_top_modules("import dask.array")


def test_top_level_reexports_estimators():
    import nnpipe

    assert nnpipe.StandardScaler.__module__ == "nnpipe.core.scalers"
    assert set(nnpipe.__all__) >= {
        "MLPRegressor",
        "MLPClassifier",
        "Perceptron",
        "HopfieldNetwork",
        "ModernHopfield",
        "StandardScaler",
        "MinMaxScaler",
    }
