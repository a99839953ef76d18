"""The layer rule: imports point down only.

nnpipe.cli -> flows -> nnpipe.training / nnpipe.tracking -> nnpipe.data ->
nnpipe.core (docs/ARCHITECTURE.md). Checked twice: at run time (import a package
in a fresh interpreter and look at ``sys.modules``) and statically (every
``import`` statement in the package's files, including ones inside functions that
a run-time check would miss).
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
    "nnpipe.training": {"mlflow", "prefect"},
    "nnpipe.tracking": {"prefect"},
}

# Only these packages (or modules) may import the heavy dependencies directly.
# Data-parallel training needs a Dask client of its own (a local cluster when none
# is given): its one Dask module may import distributed; the tasks it runs do not.
DASK_TRAINING = "nnpipe/training/distributed.py"
OWNERS = {
    "dask": ("nnpipe/data",),
    "distributed": ("nnpipe/data", DASK_TRAINING),
    "pyarrow": ("nnpipe/data",),
    "mlflow": ("nnpipe/tracking",),
}


def loaded_modules(statement: str) -> set[str]:
    """Module names present in sys.modules after running ``statement`` fresh."""
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def loaded_top_modules(statement: str) -> set[str]:
    """Top-level module names present in sys.modules after running ``statement`` fresh."""
    return {name.split(".")[0] for name in loaded_modules(statement)}


def imported_modules(package_dir: Path) -> dict[str, set[str]]:
    """Map each imported module's full dotted name to the files importing it.

    Relative imports are resolved against the file's own package, so
    ``from ..training import x`` in nnpipe/data counts as ``nnpipe.training``.
    """
    above = package_dir.parent
    prefix = list(above.relative_to(ROOT).parts) if above.is_relative_to(ROOT) else []
    found: dict[str, set[str]] = {}
    for path in package_dir.rglob("*.py"):
        relative = path.relative_to(above)
        package = prefix + list(relative.parent.parts)
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                continue
            for name in names:
                found.setdefault(name, set()).add(str(relative))
    return found


def imported_names(package_dir: Path) -> dict[str, set[str]]:
    """Map each imported top-level module name to the files importing it."""
    found: dict[str, set[str]] = {}
    for name, files in imported_modules(package_dir).items():
        found.setdefault(name.split(".")[0], set()).update(files)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_importing_package_loads_no_forbidden_dependency(package):
    loaded = loaded_top_modules(f"import {package}")
    assert not (loaded & FORBIDDEN[package]), (
        f"importing {package} pulled in {sorted(loaded & FORBIDDEN[package])}"
    )


# The one exception to "core is NumPy + stdlib" (docs/ARCHITECTURE.md): this module
# may import scikit-learn, inside a function that runs only once scikit-learn is
# already loaded, to raise and warn with scikit-learn's own classes.
SKLEARN_COMPAT = "core/sklearn_compat.py"


def test_core_files_import_only_numpy_and_stdlib():
    allowed = set(sys.stdlib_module_names) | {"numpy", "nnpipe", "threadpoolctl"}
    imports = imported_names(ROOT / "nnpipe" / "core")
    offenders = {name: files for name, files in imports.items() if name not in allowed}
    assert offenders.pop("sklearn", {SKLEARN_COMPAT}) == {SKLEARN_COMPAT}
    assert not offenders, f"nnpipe.core imports outside NumPy + stdlib: {offenders}"


def imports_sklearn(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "sklearn" for alias in node.names)
    return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sklearn"


def test_sklearn_is_imported_only_inside_a_function_of_the_compat_module():
    tree = ast.parse((ROOT / "nnpipe" / SKLEARN_COMPAT).read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    in_functions = [n for f in functions for n in ast.walk(f) if imports_sklearn(n)]
    everywhere = [n for n in ast.walk(tree) if imports_sklearn(n)]
    assert everywhere, "the compat module no longer imports scikit-learn: drop this rule"
    assert len(in_functions) == len(everywhere), "scikit-learn imported at module level"
    # Every public core name loaded: scikit-learn (and SciPy behind it) stays out.
    loaded = loaded_top_modules(
        "import nnpipe.core.mlp, nnpipe.core.perceptron, nnpipe.core.hopfield, "
        "nnpipe.core.scalers, nnpipe.core.trained_model"
    )
    assert not loaded & {"sklearn", "scipy"}


def test_training_files_import_only_numpy_stdlib_and_the_layers_below():
    allowed = set(sys.stdlib_module_names) | {"numpy", "nnpipe"}
    imports = imported_names(ROOT / "nnpipe" / "training")
    dask_side = Path(DASK_TRAINING).relative_to("nnpipe").as_posix()
    if imports.get("distributed") == {dask_side}:
        imports.pop("distributed")
    offenders = {name: files for name, files in imports.items() if name not in allowed}
    assert not offenders, f"nnpipe.training imports outside NumPy + stdlib: {offenders}"
    below = ("nnpipe._lazy", "nnpipe.core", "nnpipe.data", "nnpipe.training")
    upward = {
        name: files
        for name, files in imported_modules(ROOT / "nnpipe" / "training").items()
        if name.split(".")[0] == "nnpipe" and not name.startswith(below)
    }
    assert not upward, f"nnpipe.training imports a layer above it: {upward}"


@pytest.mark.parametrize("package", ["core", "data"])
def test_lower_layers_never_import_training(package):
    imports = imported_modules(ROOT / "nnpipe" / package)
    stray = {name: files for name, files in imports.items() if name.startswith("nnpipe.training")}
    assert not stray, f"nnpipe.{package} imports nnpipe.training: {stray}"
    # Every public name loaded, so lazily imported modules count too.
    loaded = loaded_modules(
        f"import nnpipe.{package} as p\nfor name in getattr(p, '__all__', []): getattr(p, name)"
    )
    assert "nnpipe.training" not in loaded


@pytest.mark.parametrize("dependency", sorted(OWNERS))
def test_heavy_dependency_imported_only_by_its_owner(dependency):
    imports = imported_names(ROOT / "nnpipe")
    stray = {f for f in imports.get(dependency, set()) if not f.startswith(OWNERS[dependency])}
    assert not stray, f"{dependency} imported outside {OWNERS[dependency]}: {sorted(stray)}"


def test_layer_check_detects_a_violation(tmp_path):
    # The checks above must be able to fail: plant a core-like package importing dask,
    # and one importing the training layer through a relative import.
    bad = tmp_path / "fakecore"
    bad.mkdir()
    (bad / "__init__.py").write_text("def f():\n    import dask.array\n")
    (bad / "up.py").write_text("from ..training.trainer import Trainer\n")
    assert "dask" in imported_names(bad)
    assert "training.trainer" in imported_modules(bad)
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
