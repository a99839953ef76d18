"""Perceptron.fit against the perceptron rule applied one row at a time.

Perceptron.fit scores a block of rows with one matrix product to find the next
mistake (nnpipe/core/perceptron.py, _one_pass); the peer is the plain loop it
replaced, run on the same data, seed and pass count. Both must make the same
updates (same mistakes per pass); the ratio is the median of --repeat runs, the
two sides interleaved.

    python benchmarks/bench_perceptron.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nnpipe.core.perceptron import Perceptron  # noqa: E402


def row_by_row(X, y, passes, seed):
    """The perceptron rule one row at a time (one-vs-rest columns for > 2 classes)."""
    classes = np.unique(y)
    k = 1 if len(classes) == 2 else len(classes)
    T = np.where(y[:, None] == (classes[1:] if k == 1 else classes), 1.0, -1.0)
    W, b, rng, errors = np.zeros((X.shape[1], k)), np.zeros(k), np.random.default_rng(seed), []
    for _ in range(passes):
        mistakes = 0
        for i in rng.permutation(len(X)):
            wrong = T[i] * (X[i] @ W + b) <= 0
            if wrong.any():
                W += np.outer(X[i], T[i] * wrong)
                b += T[i] * wrong
                mistakes += int(wrong.sum())
        errors.append(mistakes)
        if mistakes == 0:
            break
    return errors


def cases():
    rng = np.random.default_rng(0)
    y3 = np.arange(300) % 3
    yield (
        "300 x 2, 3 overlapping classes, 300 passes",
        rng.normal(size=(300, 2)) + y3[:, None],
        y3,
        300,
    )
    X = rng.normal(size=(5000, 20))
    yield "5000 x 20, noisy binary, 20 passes", X, (X.sum(axis=1) + rng.normal(size=5000) > 0), 20
    X = rng.uniform(-1, 1, size=(2000, 2))
    margin = X[:, 0] + 2 * X[:, 1] - 0.3
    keep = np.abs(margin) > 0.05
    yield "1900 x 2, separable, until converged", X[keep], margin[keep] > 0, 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # ConvergenceWarning on the non-separable sets
    print(f"{'case':46s} {'row by row':>11s} {'Perceptron':>11s} {'ratio':>6s}")
    for name, X, y, passes in cases():
        loop, block = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            errors = row_by_row(X, y, passes, seed=0)
            loop.append(time.perf_counter() - t)
            t = time.perf_counter()
            model = Perceptron(max_iter=passes, random_state=0).fit(X, y)
            block.append(time.perf_counter() - t)
        if model.errors_ != errors:
            raise SystemExit(f"{name}: Perceptron made different updates from the row loop")
        a, b = statistics.median(loop), statistics.median(block)
        print(f"{name:46s} {a:10.3f}s {b:10.3f}s {a / b:5.1f}x")


if __name__ == "__main__":
    main()
