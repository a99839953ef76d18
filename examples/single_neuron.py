"""The classic single sigmoid neuron, reproduced exactly.

Three inputs, no bias, seed 1, 10 000 full-batch updates on a training set whose
answer is the first input column. Prints the random starting weights, the trained
weights and the prediction for the new situation [1, 0, 0].

    python examples/single_neuron.py
"""

import numpy as np

from nnpipe.core.neuron import TRAINING_INPUTS, TRAINING_OUTPUTS, SigmoidNeuron

if __name__ == "__main__":
    start = 2 * np.random.RandomState(1).random_sample((3, 1)) - 1
    print("Random starting synaptic weights:")
    print(start)
    neuron = SigmoidNeuron(n_iter=10_000, random_state=1).fit(TRAINING_INPUTS, TRAINING_OUTPUTS)
    print("New synaptic weights after training:")
    print(neuron.weights_)
    print("Considering new situation [1, 0, 0] -> ?:")
    print(neuron.predict(np.array([[1, 0, 0]])))
