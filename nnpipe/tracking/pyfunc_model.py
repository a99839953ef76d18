"""The MLflow pyfunc for nnpipe networks (models-from-code: this file is the model's code).

MLflow copies this file into each logged model and runs it on load; the network
and feature scaler come from the model's ``.npz`` artifacts (no pickle).
``predict(df)`` returns exactly ``network.predict(scaler.transform(X))``: nnpipe's
own prediction in the original target units.
"""

from __future__ import annotations

from typing import Any

from mlflow.models import set_model
from mlflow.pyfunc import PythonContext, PythonModel

from nnpipe.tracking.model import (
    NETWORK_ARTIFACT,
    SCALER_ARTIFACT,
    default_feature_names,
    load_network,
    load_scaler,
    predict_frame,
)


class NnpipePyfuncModel(PythonModel):
    """Feature columns in, nnpipe predictions out."""

    def load_context(self, context: PythonContext) -> None:
        """Read the network and scaler files bundled with the model."""
        self.network = load_network(context.artifacts[NETWORK_ARTIFACT])
        scaler_file = context.artifacts.get(SCALER_ARTIFACT)
        self.scaler = load_scaler(scaler_file) if scaler_file else None
        config = context.model_config or {}
        self.feature_names = list(
            config.get("feature_names") or default_feature_names(self.network.n_features_in_)
        )

    def predict(self, context: PythonContext, model_input: Any, params: Any = None) -> Any:
        """Predictions for the rows of ``model_input`` (DataFrame with the feature columns)."""
        return predict_frame(self.network, self.scaler, self.feature_names, model_input)


set_model(NnpipePyfuncModel())
