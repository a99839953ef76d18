"""nnpipe: NumPy neural networks in a Parquet -> Dask -> Prefect -> MLflow batch pipeline.

The estimators are re-exported here; importing ``nnpipe`` loads only NumPy code
(``nnpipe.core``), never Dask, pyarrow, Prefect or MLflow.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> module in nnpipe.core that defines it. Resolved on first use so
# that `import nnpipe` stays cheap.
_EXPORTS = {
    "MLPRegressor": "nnpipe.core.mlp",
    "MLPClassifier": "nnpipe.core.mlp",
    "Perceptron": "nnpipe.core.perceptron",
    "HopfieldNetwork": "nnpipe.core.hopfield",
    "ModernHopfield": "nnpipe.core.modern_hopfield",
    "StandardScaler": "nnpipe.core.scalers",
    "MinMaxScaler": "nnpipe.core.scalers",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nnpipe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
