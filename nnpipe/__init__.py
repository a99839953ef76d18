"""nnpipe: NumPy neural networks in a Parquet -> Dask -> Prefect -> MLflow batch pipeline.

The estimators are re-exported here; importing ``nnpipe`` loads only NumPy code
(``nnpipe.core``), never Dask, pyarrow, Prefect or MLflow.
"""

from __future__ import annotations

from typing import Any

from nnpipe._lazy import lazy_attributes

# Public name -> the nnpipe.core module or subpackage it is imported from. Resolved
# on first use so that `import nnpipe` stays cheap.
_EXPORTS = {
    "MLPRegressor": "nnpipe.core.mlp",
    "MLPClassifier": "nnpipe.core.mlp",
    "Perceptron": "nnpipe.core.perceptron",
    "HopfieldNetwork": "nnpipe.core.hopfield",
    "ModernHopfield": "nnpipe.core.hopfield",
    "StandardScaler": "nnpipe.core.scalers",
    "MinMaxScaler": "nnpipe.core.scalers",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


_exported, __dir__ = lazy_attributes(__name__, _EXPORTS, __all__)


def __getattr__(name: str) -> Any:
    if name != "__version__":
        return _exported(name)
    # The version is written once, in pyproject.toml; an installed nnpipe reads it back,
    # on first use: importlib.metadata is 50 ms of every command's start otherwise.
    from importlib import metadata

    global __version__
    try:
        __version__ = metadata.version("nnpipe")
    except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
        __version__ = "0+unknown"
    return __version__
