"""scikit-learn compatibility without importing scikit-learn."""

from __future__ import annotations

import sys
from typing import Any


def sklearn_tags(estimator_type: str) -> Any:
    """scikit-learn's tags for a supervised ``'regressor'`` or ``'classifier'``.

    Built from the scikit-learn module already loaded by whoever asks (only
    scikit-learn calls ``__sklearn_tags__``), so nnpipe.core never imports it.
    """
    tags = sys.modules["sklearn.utils._tags"]
    return tags.Tags(
        estimator_type=estimator_type,
        target_tags=tags.TargetTags(required=True),
        transformer_tags=None,
        regressor_tags=tags.RegressorTags() if estimator_type == "regressor" else None,
        classifier_tags=tags.ClassifierTags() if estimator_type == "classifier" else None,
    )
