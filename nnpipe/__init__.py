"""nnpipe: NumPy neural networks in a Parquet -> Dask -> Prefect -> MLflow batch pipeline.

The estimators are re-exported here; importing ``nnpipe`` loads only NumPy code
(``nnpipe.core``), never Dask, pyarrow, Prefect or MLflow.
"""

from __future__ import annotations

from importlib import metadata

from nnpipe._lazy import lazy_attributes

# The version is written once, in pyproject.toml; an installed nnpipe reads it back.
try:
    __version__ = metadata.version("nnpipe")
except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"

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


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, __all__)
