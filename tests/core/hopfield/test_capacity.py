"""capacity_curve: a plain table of recall quality per load and noise level."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from nnpipe.core.hopfield import COLUMNS, capacity_curve


def test_table_has_one_row_per_load_and_noise_in_input_order():
    table = capacity_curve(60, [0.05, 0.1], [0.0, 0.1, 0.3], trials=2, random_state=0)
    assert list(table) == list(COLUMNS)
    assert all(len(column) == 6 for column in table.values())
    assert table["load"] == [0.05] * 3 + [0.1] * 3
    assert table["noise"] == [0.0, 0.1, 0.3] * 2
    assert table["n_patterns"] == [3] * 3 + [6] * 3
    assert table["n_flipped"] == [0, 6, 18] * 2
    assert table["n_probes"] == [6] * 3 + [12] * 3
    json.dumps(table)  # plain Python values, ready for a report


def test_values_are_fractions_and_noise_free_probes_of_few_patterns_come_back():
    table = capacity_curve(100, [0.02], [0.0, 0.4], trials=3, random_state=1)
    for name in ("exact_recall", "mean_overlap", "converged"):
        assert all(0.0 <= v <= 1.0 for v in np.abs(table[name]))
    assert table["exact_recall"][0] == 1.0
    assert table["exact_recall"][1] < table["exact_recall"][0]


def test_same_seed_same_table_and_probes_per_trial_is_honoured():
    a = capacity_curve(50, [0.1], [0.1], trials=2, probes_per_trial=9, random_state=3)
    b = capacity_curve(50, [0.1], [0.1], trials=2, probes_per_trial=9, random_state=3)
    assert a == b
    assert a["n_probes"] == [18]


def test_overloading_on_purpose_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capacity_curve(50, [0.5], [0.1], trials=1, random_state=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_neurons": 1}, "at least 2"),
        ({"loads": []}, "loads is empty"),
        ({"loads": [-0.1]}, "load=-0.1"),
        ({"noise_levels": [1.5]}, "noise level 1.5"),
        ({"rule": "oja"}, "rule='oja'"),
        ({"trials": 0}, "trials=0"),
        ({"probes_per_trial": 0}, "probes_per_trial=0"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    args = {"n_neurons": 20, "loads": [0.1], "noise_levels": [0.1], **kwargs}
    with pytest.raises(ValueError, match=message):
        capacity_curve(**args)
