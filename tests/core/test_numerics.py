"""Numerical precision of the scalers, dtype agreement with the MLP, input validation.

References are NumPy's float64 ``mean``/``var``/``min``/``max`` on the same data.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp import MLPRegressor
from nnpipe.core.scalers import StandardScaler
from nnpipe.core.validation import check_array

F32_HALF_ULP_AT_1 = 2.0**-24  # largest rounding error of a float32 in [0.5, 1]


def rng(seed=0):
    return np.random.default_rng(seed)


# -- 5. validation ---------------------------------------------------------------------------


def test_complex_input_is_refused_not_truncated():
    with pytest.raises(ValueError, match="X has complex dtype complex128; only real numbers"):
        StandardScaler().fit([[1 + 5j], [2 + 1j], [3 - 2j]])
    with pytest.raises(ValueError, match="y has complex dtype"):
        check_array(np.array([1j, 2.0]), name="y", ndim=1)


def test_values_beyond_float32_are_reported_as_overflow_with_the_fix():
    X = np.array([[1.0, 1e39], [2.0, -3e38], [3.0, 4e38]])
    msg = r"X has 2 values beyond the range of float32 \(.*column 1\); use dtype='float64'"
    with pytest.raises(ValueError, match=msg):
        check_array(X, dtype=np.float32)
    with pytest.raises(ValueError, match="dtype='float64'"):
        MLPRegressor(max_iter=1).fit(X, [1.0, 2.0, 3.0])
    assert check_array(X, dtype=np.float64).dtype == np.float64


def test_genuine_infinities_are_still_reported_as_infinite():
    X = np.array([[1.0, np.inf], [2.0, np.nan]])
    with pytest.raises(ValueError, match="1 NaN and 1 infinite values"):
        check_array(X, dtype=np.float32)
