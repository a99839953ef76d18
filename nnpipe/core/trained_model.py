"""A trained model as one file: network, feature scaler and column names, no pickle.

The network owns its target scaler (predictions come back in target units) but
not the feature scaler it was trained behind, nor the names of the columns it
reads. :class:`TrainedModel` holds all three, so "pick the columns, scale them,
predict" is written once, here, for ``nnpipe predict``, the MLflow pyfunc and
the training flow.

File layout (one ``.npz`` through :func:`~nnpipe.core.serialization.save_npz`):
the network's own arrays under ``network.<name>`` and the feature scaler's under
``feature_scaler.<name>`` (the names their ``to_arrays`` give); the metadata holds
``kind = "TrainedModel"``, ``feature_names``, ``target_names`` (or null), and the
network's and scaler's own metadata under ``network`` and ``feature_scaler`` (null
when the features are used as they are). A classifier's class labels (int, str or
bool) are the network's own ``classes_`` array, so they travel in the same file.

This module knows nothing of pandas: anything with ``.columns`` (a DataFrame) or
a mapping of column name to values is read by name; other input is taken as an
``(n_samples, n_features)`` array in ``feature_names`` order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .mlp import MLPClassifier, MLPRegressor, load_model, network_from_arrays
from .perceptron import Perceptron
from .scalers import load_scaler, scaler_from_arrays
from .serialization import ModelFileError, NpzFileMixin, file_name, load_npz

__all__ = ["TrainedModel", "default_feature_names"]

_KIND = "TrainedModel"
_NETWORK_KINDS = {cls.__name__ for cls in (MLPRegressor, MLPClassifier, Perceptron)}
_NETWORK, _SCALER = "network", "feature_scaler"


def default_feature_names(n_features: int) -> list[str]:
    """``x0, x1, ...``: the column names used when none are given."""
    return [f"x{i}" for i in range(n_features)]


class TrainedModel(NpzFileMixin):
    """A fitted network with the feature scaler and column names it predicts with.

    Parameters
    ----------
    network : fitted MLPRegressor, MLPClassifier or Perceptron
    feature_scaler : fitted StandardScaler or MinMaxScaler, or None
        Applied to the feature columns before the network; None = features as they are.
    feature_names : sequence of str (n_features,), default ``x0, x1, ...``
        The input columns, in the order the network takes them.
    target_names : sequence of str, optional
        What the network predicts (kept for the reader; predictions are not renamed).
    """

    def __init__(
        self,
        network: Any,
        feature_scaler: Any = None,
        feature_names: Sequence[str] | None = None,
        target_names: Sequence[str] | None = None,
    ):
        n = getattr(network, "n_features_in_", None)
        if n is None:
            raise ValueError(f"the network ({type(network).__name__}) is not fitted")
        n = int(n)
        names = default_feature_names(n) if feature_names is None else list(feature_names)
        if not all(isinstance(name, str) for name in names):
            raise ValueError(f"feature_names must be strings, got {names}")
        if len(names) != n:
            raise ValueError(f"{len(names)} feature_names given but the network takes {n}")
        if len(set(names)) != len(names):
            raise ValueError(f"feature_names has duplicates: {names}")
        if feature_scaler is not None and int(feature_scaler.n_features_in_) != n:
            raise ValueError(
                f"the feature scaler has {feature_scaler.n_features_in_} features "
                f"but the network takes {n}"
            )
        self.network = network
        self.feature_scaler = feature_scaler
        self.feature_names = names
        self.target_names = None if target_names is None else [str(t) for t in target_names]

    @property
    def n_features_in_(self) -> int:
        """How many feature columns the model reads."""
        return len(self.feature_names)

    def __repr__(self) -> str:
        scaler = type(self.feature_scaler).__name__ if self.feature_scaler is not None else None
        classes = "" if self.classes is None else f", classes={self.classes.tolist()}"
        return (
            f"TrainedModel({type(self.network).__name__}, feature_scaler={scaler}, "
            f"feature_names={self.feature_names}, target_names={self.target_names}{classes})"
        )

    # -- predicting ------------------------------------------------------------------
    def feature_matrix(self, data: Any) -> np.ndarray:
        """The feature columns of ``data`` as float64 rows, in ``feature_names`` order.

        ``data``: a DataFrame-like (``.columns``) or a mapping of column name to values,
        read by name (extra columns ignored); else an array of shape (n, n_features)
        or one row (n_features,).
        """
        if hasattr(data, "columns") or isinstance(data, Mapping):
            return self._columns_by_name(data)
        try:
            X = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"input is not numeric: {exc}") from exc
        X = X.reshape(1, -1) if X.ndim == 1 else X
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"input has shape {X.shape}; expected (n_samples, {self.n_features_in_}) "
                f"with columns {self.feature_names}"
            )
        return X

    def _columns_by_name(self, data: Any) -> np.ndarray:
        available = set(data.columns if hasattr(data, "columns") else data.keys())
        missing = [name for name in self.feature_names if name not in available]
        if missing:
            raise ValueError(
                f"input is missing feature columns {missing}; "
                f"the model was trained on {self.feature_names}"
            )
        columns = []
        for name in self.feature_names:
            try:
                column = np.atleast_1d(np.asarray(data[name], dtype=np.float64))  # (n,)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"feature column {name!r} is not numeric: {exc}") from exc
            if column.ndim != 1:
                raise ValueError(
                    f"feature column {name!r} has shape {column.shape}; expected one value "
                    "per row (is the column name repeated?)"
                )
            columns.append(column)
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            raise ValueError(f"feature columns have different lengths {sorted(lengths)}")
        return np.column_stack(columns)  # (n, n_features)

    @property
    def classes(self) -> np.ndarray | None:
        """A classifier's class labels (the order of its probability columns); else None."""
        return getattr(self.network, "classes_", None)

    def _scaled(self, data: Any) -> np.ndarray:
        X = self.feature_matrix(data)  # (n, n_features)
        if self.feature_scaler is not None:
            X = self.feature_scaler.transform(X)
        return X

    def predict(self, data: Any) -> np.ndarray:
        """``network.predict(feature_scaler.transform(X))``: target units, or class labels."""
        return self.network.predict(self._scaled(data))

    def probability_columns(self, prefix: str = "proba_") -> list[str]:
        """Names for the probability columns: ``prefix`` + each class label, in class order."""
        if self.classes is None:
            raise ValueError(
                f"the model's network is a {type(self.network).__name__}: it has no classes"
            )
        return [f"{prefix}{label}" for label in self.classes.tolist()]

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in :attr:`classes` order."""
        if not callable(getattr(self.network, "predict_proba", None)):
            raise ValueError(
                f"the model's network is a {type(self.network).__name__}: it gives no class "
                "probabilities (only a classifier does)"
            )
        return self.network.predict_proba(self._scaled(data))

    # -- the file --------------------------------------------------------------------
    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, JSON-able meta) in the layout described in the module docstring."""
        net_arrays, net_meta = self.network.to_arrays()
        arrays = {f"{_NETWORK}.{k}": v for k, v in net_arrays.items()}
        scaler_meta = None
        if self.feature_scaler is not None:
            s_arrays, scaler_meta = self.feature_scaler.to_arrays()
            arrays.update({f"{_SCALER}.{k}": v for k, v in s_arrays.items()})
        meta = {
            "kind": _KIND,
            "feature_names": self.feature_names,
            "target_names": self.target_names,
            _NETWORK: net_meta,
            _SCALER: scaler_meta,
        }
        return arrays, meta

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: Any = "<memory>"
    ) -> TrainedModel:
        """Rebuild from :meth:`to_arrays` output; ``path`` names the source in errors."""
        kind = meta.get("kind")
        if isinstance(kind, str) and kind in _NETWORK_KINDS:
            raise ModelFileError(_bare_network_message(path, kind))
        if kind != _KIND:
            raise ModelFileError(f"{str(path)!r} holds a {kind!r}, expected a {_KIND!r}")
        try:
            network = network_from_arrays(_part(arrays, _NETWORK), meta[_NETWORK], path)
            scaler = None
            if meta[_SCALER] is not None:
                scaler = scaler_from_arrays(_part(arrays, _SCALER), meta[_SCALER], path)
            return cls(network, scaler, meta["feature_names"], meta["target_names"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ModelFileError(f"{str(path)!r} is not a valid {_KIND} file: {exc!r}") from exc
        except ValueError as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(f"{str(path)!r} is not a valid {_KIND} file: {exc}") from exc

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainedModel:
        """Read a file written by :meth:`save` (no pickle; a bare network file is refused)."""
        arrays, meta = load_npz(path)  # kind checked by from_arrays, to explain bare networks
        return cls.from_arrays(arrays, meta, file_name(path))

    @classmethod
    def from_files(
        cls,
        network_path: str | os.PathLike,
        scaler_path: str | os.PathLike | None = None,
        feature_names: Sequence[str] | None = None,
        target_names: Sequence[str] | None = None,
    ) -> TrainedModel:
        """A model from a network file and (optionally) a feature-scaler file, as saved apart."""
        network = load_model(network_path)
        scaler = None if scaler_path is None else load_scaler(scaler_path)
        return cls(network, scaler, feature_names, target_names)


def _part(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    start = f"{prefix}."
    return {k[len(start) :]: v for k, v in arrays.items() if k.startswith(start)}


def _bare_network_message(path: Any, kind: str) -> str:
    # Files written before TrainedModel existed: say how to make one from them.
    return (
        f"{str(path)!r} holds a bare {kind} network, without the feature scaler and "
        'column names a TrainedModel carries; convert it with: python -c "from '
        "nnpipe.core.trained_model import TrainedModel; TrainedModel.from_files("
        f"'{path}', scaler_path='x_scaler.npz', feature_names=['x0', 'x1']).save("
        "'trained.npz')\" (the scaler file and feature columns it was trained with; "
        "scaler_path=None if there was none)"
    )
