"""The classic single sigmoid neuron reproduces its published numbers exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnpipe.core.neuron import TRAINING_INPUTS, TRAINING_OUTPUTS, SigmoidNeuron

ROOT = Path(__file__).resolve().parents[2]


def test_reproduces_published_weights_and_prediction():
    neuron = SigmoidNeuron().fit(TRAINING_INPUTS, TRAINING_OUTPUTS)
    np.testing.assert_allclose(
        neuron.weights_.ravel(), [9.67299303, -0.2078435, -4.62963669], atol=5e-9
    )
    assert neuron.predict([1, 0, 0]) == pytest.approx(0.99993704, abs=5e-9)


def test_starting_weights_are_the_seeded_random_state_draw():
    neuron = SigmoidNeuron(n_iter=1).fit()
    w0 = 2 * np.random.RandomState(1).random_sample((3, 1)) - 1
    out = 1 / (1 + np.exp(-(TRAINING_INPUTS @ w0)))
    expected = w0 + TRAINING_INPUTS.T @ ((TRAINING_OUTPUTS - out) * out * (1 - out))
    np.testing.assert_array_equal(neuron.weights_, expected)


def test_example_script_prints_the_published_numbers():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "single_neuron.py")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "[[ 9.67299303]\n [-0.2078435 ]\n [-4.62963669]]" in out
    assert "[0.99993704]" in out
