"""Learning quality with defaults: nnpipe against scikit-learn on the same splits and budgets.

Each library runs with its own default parameters (one hidden layer of 100 ReLU
units, Adam, lr 1e-3, batch min(200, n), tol 1e-4 with 10 epochs of patience);
only ``max_iter`` (the epoch budget) and ``random_state`` are set, the same for
both. Every set is split 75/25 (stratified for classification) with the seed,
and the features are standardised on the training part, as in a scikit-learn
Pipeline; the targets are left as they are, so each regressor meets them raw.
Scores are on the test part: R^2 for regression, accuracy for classification,
averaged over the seeds. scikit-learn's ConvergenceWarning (budget reached) is
silenced: stopping at the budget is the point. scikit-learn runs one BLAS thread (the
scores do not depend on it; on a shared machine it is faster); nnpipe picks its own.

Sets: scikit-learn's regression check data (200 rows, one informative feature,
target already standardised, so only the initialisation differs there), its
bundled real sets (diabetes; iris, wine, breast_cancer, digits) and synthetic
regression sets built on make_friedman1: as is (targets about 0..30), negated and
shifted (all negative) and offset by 1e4.

    python benchmarks/bench_quality.py                 # 9 sets, 10/50/200 epochs, 10 seeds
    python benchmarks/bench_quality.py --quick         # 50 epochs, 1 seed
    python benchmarks/bench_quality.py --sets diabetes iris --epochs 50 --seeds 5
    python benchmarks/bench_quality.py --activation tanh   # another default for both
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nnpipe.core.mlp import MLPClassifier, MLPRegressor  # noqa: E402

TOLERANCE = 0.01  # the goal: nnpipe >= scikit-learn - TOLERANCE on every set


def _friedman(shift: float = 0.0, sign: float = 1.0):
    def load():
        from sklearn.datasets import make_friedman1

        X, y = make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=0)
        return X, sign * y + shift

    return load


def _bundled(name: str):
    def load():
        from sklearn import datasets

        return getattr(datasets, f"load_{name}")(return_X_y=True)

    return load


def _regression_check():
    """scikit-learn's check_regressors_train data: 200 rows, one informative feature."""
    from sklearn.datasets import make_regression

    X, y = make_regression(
        n_samples=200, n_features=10, n_informative=1, bias=5.0, noise=20, random_state=42
    )
    return X, (y - y.mean()) / y.std()


# name -> (task, loader returning X, y)
SETS: dict[str, tuple[str, Callable]] = {
    "regression_check": ("regression", _regression_check),
    "diabetes": ("regression", _bundled("diabetes")),
    "friedman1": ("regression", _friedman()),
    "negative": ("regression", _friedman(shift=-10.0, sign=-1.0)),  # -40 .. -10
    "offset_1e4": ("regression", _friedman(shift=1e4)),
    "iris": ("classification", _bundled("iris")),
    "wine": ("classification", _bundled("wine")),
    "breast_cancer": ("classification", _bundled("breast_cancer")),
    "digits": ("classification", _bundled("digits")),
}


def split(X, y, task: str, seed: int):
    """The same standardised 75/25 split for both libraries."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    stratify = y if task == "classification" else None
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.25, random_state=seed, stratify=stratify
    )
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr, yte


def scores(task: str, data, epochs: int, seed: int, **params) -> tuple[float, float]:
    """Test-set scores of nnpipe and scikit-learn: defaults, ``epochs`` and ``params``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkClassifier
    from sklearn.neural_network import MLPRegressor as SkRegressor

    Xtr, Xte, ytr, yte = data
    ours, theirs = (
        (MLPRegressor, SkRegressor) if task == "regression" else (MLPClassifier, SkClassifier)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the budget is reached: intended
        nn = ours(max_iter=epochs, random_state=seed, **params).fit(Xtr, ytr)
        sk = theirs(max_iter=epochs, random_state=seed, **params).fit(Xtr, ytr)
    return nn.score(Xte, yte), sk.score(Xte, yte)


def run(names: list[str], budgets: list[int], seeds: int, **params) -> list[tuple]:
    """Rows (set, epochs, nnpipe mean, scikit-learn mean) over ``seeds`` seeds."""
    rows = []
    for name in names:
        task, load = SETS[name]
        X, y = load()
        splits = [split(X, y, task, seed) for seed in range(seeds)]
        for epochs in budgets:
            pairs = [scores(task, splits[seed], epochs, seed, **params) for seed in range(seeds)]
            nn = statistics.fmean(p[0] for p in pairs)
            sk = statistics.fmean(p[1] for p in pairs)
            # Standard error of the mean paired difference: how much of it the seeds explain.
            se = statistics.stdev(a - b for a, b in pairs) / seeds**0.5 if seeds > 1 else 0.0
            rows.append((name, task, epochs, nn, sk))
            print(
                f"   {name:<18}{'R^2' if task == 'regression' else 'acc':>5}{epochs:>7}"
                f"{nn:>12.4g}{sk:>14.4g}{nn - sk:>+12.4g}{se:>10.2g}",
                flush=True,
            )
    return rows


def summarise(rows: list[tuple], budgets: list[int]) -> None:
    """Per budget: sets within the tolerance, sets ahead, and the median/mean difference."""
    for epochs in budgets:
        diffs = [nn - sk for _, _, e, nn, sk in rows if e == epochs]
        within = sum(d >= -TOLERANCE for d in diffs)
        ahead = sum(d > 0 for d in diffs)
        # Differences with |d| > 1 (a regressor far off on raw targets) would swamp a
        # plain mean, so it is also given with each difference clipped to [-1, 1].
        clipped = statistics.fmean(max(-1.0, min(1.0, d)) for d in diffs)
        print(
            f"   {epochs:>4} epochs: nnpipe >= scikit-learn - {TOLERANCE} on {within}/"
            f"{len(diffs)} sets, ahead on {ahead}; difference median "
            f"{statistics.median(diffs):+.4f}, mean clipped to [-1, 1] {clipped:+.4f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 epochs, 1 seed")
    parser.add_argument("--epochs", type=int, nargs="+", default=None, help="budgets (10 50 200)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (10)")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument(
        "--activation", choices=["relu", "tanh", "logistic", "identity"], default="relu",
        help="hidden activation for both libraries (relu: both defaults)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    budgets = args.epochs if args.epochs is not None else [50] if args.quick else [10, 50, 200]
    seeds = args.seeds if args.seeds is not None else 1 if args.quick else 10
    if min(budgets) < 1 or seeds < 1:
        parser.error("--epochs and --seeds must be positive")
    try:
        import sklearn
    except ImportError:
        print("scikit-learn not importable: nothing to compare against")
        return
    print(
        f"== defaults of nnpipe and scikit-learn {sklearn.__version__} (activation="
        f"{args.activation!r}), test-set score, mean of {seeds} seed(s), features "
        "standardised, targets raw"
    )
    print(
        f"   {'set':<18}{'':>5}{'epochs':>7}{'nnpipe':>12}{'scikit-learn':>14}"
        f"{'difference':>12}{'std err':>10}"
    )
    t = time.perf_counter()
    with threadpool_limits(1, user_api="blas"):
        rows = run(args.sets, budgets, seeds, activation=args.activation)
    print(f"== summary ({time.perf_counter() - t:.0f} s)")
    summarise(rows, budgets)


if __name__ == "__main__":
    main()
