"""Training throughput of nnpipe's MLPRegressor against its peers, measured in one run.

Contenders get the same data, architecture (tanh hidden layers, identity output),
optimizer (Adam, lr 1e-3, alpha 1e-4), batch size, epochs, float32 arrays and BLAS
thread count: nnpipe, scikit-learn's MLPRegressor, a plain NumPy training loop as a
user would write it, and PyTorch on the CPU when it is importable. Repeats are
interleaved (every contender once per round) so machine noise hits all of them;
the medians are reported with ratios to nnpipe and, as a ceiling, the fraction of
the float32 GEMM rate measured in the same run (6 x parameters FLOPs per sample).

    python benchmarks/bench_mlp.py            # full run (a few minutes)
    python benchmarks/bench_mlp.py --quick    # short run
    python benchmarks/bench_mlp.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nnpipe.core.mlp import MLPRegressor  # noqa: E402
from nnpipe.core.threads import choose_n_threads, other_runnable_tasks  # noqa: E402

ALPHA, LR = 1e-4, 1e-3


@dataclass
class Case:
    name: str
    n_features: int
    hidden: tuple[int, ...]
    batch: int
    rows: int
    epochs: int

    @property
    def sizes(self) -> list[int]:
        return [self.n_features, *self.hidden, 1]

    @property
    def n_params(self) -> int:
        s = self.sizes
        return sum(a * b + b for a, b in zip(s[:-1], s[1:], strict=True))

    @property
    def samples(self) -> int:
        return self.rows * self.epochs


def make_data(case: Case, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(case.rows, case.n_features)).astype(dtype)
    w = rng.normal(size=case.n_features) / np.sqrt(case.n_features)
    y = np.tanh(X @ w) * 3.0 - 1.0 + 0.1 * rng.normal(size=case.rows)
    return X, ((y - y.mean()) / y.std()).astype(dtype)


# -- contenders ----------------------------------------------------------------------
def run_nnpipe(case: Case, X, y, threads: int | None) -> float:
    model = MLPRegressor(
        hidden_layer_sizes=case.hidden, activation="tanh", solver="adam", alpha=ALPHA,
        batch_size=case.batch, learning_rate_init=LR, max_iter=case.epochs, tol=0.0,
        n_iter_no_change=case.epochs + 1, random_state=0, n_threads=threads,
    )  # fmt: skip
    model.fit(X, y)
    return model.loss_curve_[-1]


def run_sklearn(case: Case, X, y, threads: int | None) -> float:
    from sklearn.neural_network import MLPRegressor as SkMLP

    model = SkMLP(
        hidden_layer_sizes=case.hidden, activation="tanh", solver="adam", alpha=ALPHA,
        batch_size=case.batch, learning_rate_init=LR, max_iter=case.epochs, tol=0.0,
        n_iter_no_change=case.epochs + 1, random_state=0, shuffle=True,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: intended
        model.fit(X, y)
    return model.loss_curve_[-1]


def run_numpy_loop(case: Case, X, y, threads: int | None) -> float:
    """The straightforward NumPy training loop (allocating, per-layer Adam)."""
    rng = np.random.default_rng(0)
    sizes, dt = case.sizes, X.dtype
    Ws = [
        (rng.uniform(-1, 1, size=(a, b)) * np.sqrt(6 / (a + b))).astype(dt)
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    bs = [np.zeros(b, dtype=dt) for b in sizes[1:]]
    params = Ws + bs
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    Y = y.reshape(-1, 1)
    total = 0.0
    for _ in range(case.epochs):
        order = rng.permutation(len(X))
        total = 0.0
        for start in range(0, len(X), case.batch):
            idx = order[start : start + case.batch]
            xb, yb = X[idx], Y[idx]
            n = len(idx)
            acts = [xb]
            for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
                z = acts[-1] @ W + b
                acts.append(np.tanh(z) if i < len(Ws) - 1 else z)
            diff = acts[-1] - yb
            total += 0.5 * float((diff**2).sum())
            delta = diff / n
            gW, gb = [None] * len(Ws), [None] * len(Ws)
            for i in range(len(Ws) - 1, -1, -1):
                gW[i] = acts[i].T @ delta + ALPHA * Ws[i] / n
                gb[i] = delta.sum(axis=0)
                if i > 0:
                    delta = (delta @ Ws[i].T) * (1 - acts[i] ** 2)
            t += 1
            step = float(LR * np.sqrt(1 - b2**t) / (1 - b1**t))
            for p, g, m, v in zip(params, gW + gb, ms, vs, strict=True):
                m[...] = b1 * m + (1 - b1) * g
                v[...] = b2 * v + (1 - b2) * g * g
                p -= step * m / (np.sqrt(v) + eps)
        total /= len(X)
    return total


def run_torch(case: Case, X, y, threads: int | None) -> float:
    import torch

    torch.manual_seed(0)
    if threads:
        torch.set_num_threads(threads)
    layers = []
    for i, (a, b) in enumerate(zip(case.sizes[:-1], case.sizes[1:], strict=True)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(case.sizes) - 2:
            layers.append(torch.nn.Tanh())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=LR, weight_decay=0.0)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(y.reshape(-1, 1))
    gen = torch.Generator().manual_seed(0)
    total = 0.0
    for _ in range(case.epochs):
        order = torch.randperm(len(X), generator=gen)
        total = 0.0
        for start in range(0, len(X), case.batch):
            idx = order[start : start + case.batch]
            opt.zero_grad(set_to_none=True)
            loss = 0.5 * ((net(Xt[idx]) - Yt[idx]) ** 2).sum(dim=1).mean()
            # The same L2 term as the others: 0.5 * alpha * ||W||^2 / batch rows.
            l2 = sum((p**2).sum() for n_, p in net.named_parameters() if n_.endswith("weight"))
            (loss + 0.5 * ALPHA * l2 / len(idx)).backward()
            opt.step()
            total += loss.item() * len(idx)
        total /= len(X)
    return total


def gemm_rate(case: Case, threads: int, repeats: int = 7) -> float:
    """Median float32 GEMM FLOP/s on the case's largest layer product."""
    a, b = max(zip(case.sizes[:-1], case.sizes[1:], strict=True), key=lambda s: s[0] * s[1])
    rng = np.random.default_rng(1)
    A = rng.normal(size=(case.batch, a)).astype(np.float32)
    B = rng.normal(size=(a, b)).astype(np.float32)
    C = np.empty((case.batch, b), dtype=np.float32)
    inner = max(1, int(1e9 // (2 * case.batch * a * b)))
    times = []
    with threadpool_limits(threads, user_api="blas"):
        np.matmul(A, B, out=C)
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(inner):
                np.matmul(A, B, out=C)
            times.append((time.perf_counter() - t) / inner)
    return 2 * case.batch * a * b / statistics.median(times)


def contenders() -> dict[str, object]:
    found = {"nnpipe": run_nnpipe, "numpy loop": run_numpy_loop}
    try:
        import sklearn  # noqa: F401

        found["scikit-learn"] = run_sklearn
    except ImportError:
        print("scikit-learn not importable: skipped")
    try:
        import torch  # noqa: F401

        found["pytorch"] = run_torch
    except ImportError:
        print("PyTorch not importable: skipped")
    return found


def bench_case(case: Case, threads: int, repeats: int) -> dict[str, float]:
    X, y = make_data(case)
    runners = contenders()
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    losses: dict[str, float] = {}
    gemms: list[float] = []
    for r in range(repeats + 1):  # round 0 warms up caches and imports, not counted
        for name, run in runners.items():
            with threadpool_limits(threads, user_api="blas"):
                t, c = time.perf_counter(), time.process_time()
                losses[name] = run(case, X, y, threads)
                elapsed, cpu_s = time.perf_counter() - t, time.process_time() - c
            if r:
                times[name].append(elapsed)
                cpu[name].append(cpu_s)
        if r:  # the GEMM ceiling is measured in every round too, under the same noise
            gemms.append(gemm_rate(case, threads, repeats=3))
    gemm = statistics.median(gemms)
    flops_per_sample = 6 * case.n_params
    print(
        f"\n== {case.name}: {'-'.join(map(str, case.sizes))}, tanh, Adam, batch {case.batch}, "
        f"float32, {case.rows} rows x {case.epochs} epochs, {threads} BLAS thread(s), "
        f"{repeats} interleaved repeats"
    )
    print(f"   float32 GEMM rate on the largest layer: {gemm / 1e9:.1f} GFLOP/s")
    # Wall time is what users wait for; CPU time (all threads of the process) is less
    # disturbed by other processes on a shared machine, so both are shown.
    print(
        f"   {'contender':<14}{'median s':>10}{'samples/s':>12}{'x/nnpipe':>10}"
        f"{'GEMM frac':>11}{'cpu s':>8}{'cpu x/nn':>10}{'last loss':>11}"
    )
    med = {name: statistics.median(ts) for name, ts in times.items()}
    med_cpu = {name: statistics.median(ts) for name, ts in cpu.items()}
    for name, m in med.items():
        rate = case.samples / m
        print(
            f"   {name:<14}{m:>10.3f}{rate:>12.0f}{m / med['nnpipe']:>10.2f}"
            f"{rate * flops_per_sample / gemm:>11.1%}{med_cpu[name]:>8.2f}"
            f"{med_cpu[name] / med_cpu['nnpipe']:>10.2f}{losses[name]:>11.4f}"
        )
    return med


def bench_defaults(case: Case, repeats: int) -> None:
    """What a user gets untuned: float64 arrays, each library's default threads and dtype."""
    try:
        from sklearn.neural_network import MLPRegressor as SkMLP  # noqa: F401
    except ImportError:
        return
    X, y = make_data(case, dtype=np.float64)
    times = {"nnpipe (defaults)": [], "scikit-learn (defaults)": []}
    auto = choose_n_threads(case.sizes, case.batch)
    for r in range(repeats + 1):
        for name in times:
            run = run_nnpipe if name.startswith("nnpipe") else run_sklearn
            t = time.perf_counter()
            run(case, X, y, None)
            if r:
                times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"\n== defaults on {case.name} (float64 input; nnpipe: float32 + {auto} auto thread(s);"
        f" scikit-learn: float64 + BLAS default threads)"
    )
    for name, m in med.items():
        print(f"   {name:<26}{m:>8.3f} s{case.samples / m:>10.0f} samples/s")
    ratio = med["scikit-learn (defaults)"] / med["nnpipe (defaults)"]
    print(f"   nnpipe is {ratio:.2f}x scikit-learn's samples/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and repeats")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for every contender")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--case", choices=["small", "wide", "defaults", "all"], default="all")
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (3 if quick else 5)
    small = Case("small", 64, (256, 256), 256, 16_384 if quick else 65_536, 1 if quick else 3)
    wide = Case("wide", 512, (1024, 1024), 1024, 4_096 if quick else 16_384, 1)
    print(
        f"cores usable: {len(os.sched_getaffinity(0))}, other runnable tasks now: "
        f"{other_runnable_tasks()}, load average: {os.getloadavg()[0]:.2f}"
    )
    if args.case in ("small", "all"):
        med = bench_case(small, args.threads, repeats)
        if "scikit-learn" in med:
            print(f"   nnpipe is {med['scikit-learn'] / med['nnpipe']:.2f}x scikit-learn")
    if args.case in ("wide", "all"):
        med = bench_case(wide, args.threads, repeats)
        if "scikit-learn" in med:
            print(f"   nnpipe is {med['scikit-learn'] / med['nnpipe']:.2f}x scikit-learn")
    if args.case in ("defaults", "all"):
        # One epoch and at most 3 repeats: untuned multi-threaded runs can be very slow
        # on a busy machine, which is the point of this comparison.
        untuned = Case("small", 64, (256, 256), 256, small.rows, 1)
        bench_defaults(untuned, min(repeats, 3))


if __name__ == "__main__":
    main()
