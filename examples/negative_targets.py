"""Negative inputs and negative targets: the BP network predicts negative numbers.

A sigmoid output unit lives in (0, 1), so a network built that way can only
predict positive values. nnpipe's regressor uses an identity output, standardises
the targets for training and maps predictions back; asking for a sigmoid output
on such targets is refused with an error that says why.

    python examples/negative_targets.py
"""

import numpy as np

from nnpipe import MLPRegressor

if __name__ == "__main__":
    rng = np.random.default_rng(0)
    X = rng.uniform(-5, -1, size=(2000, 2))  # (n, 2), all negative
    y = X[:, 0] * X[:, 1] * -0.5 - 3.0  # all negative, from about -15.5 to -3.5

    model = MLPRegressor(hidden_layer_sizes=(32, 32), activation="tanh", max_iter=200,
                         learning_rate_init=0.01, random_state=0)  # fmt: skip
    model.fit(X[:1600], y[:1600])
    pred = model.predict(X[1600:])
    print(f"targets     min {y[1600:].min():8.3f}  max {y[1600:].max():8.3f}")
    print(f"predictions min {pred.min():8.3f}  max {pred.max():8.3f}")
    print(f"R^2 on held-out rows: {model.score(X[1600:], y[1600:]):.4f}")
    print(f"epochs: {model.n_iter_}, final training loss {model.loss_curve_[-1]:.5f}")

    try:
        MLPRegressor(output_activation="logistic", max_iter=5).fit(X, y)
    except ValueError as err:
        print(f"\nA sigmoid output is refused:\n  {err}")
