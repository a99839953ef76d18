"""Hopfield recall speed: nnpipe against a per-probe, per-neuron loop, and against GEMM.

Default case (the performance target): N = 1000 neurons, 50 stored patterns (Hebbian),
2000 probes with 10% of their bits flipped.

1. Async recall: nnpipe's vectorised recall against the straightforward loop written
   below (one probe at a time, one neuron at a time, in the same sweep orders). Both
   must give the same states, sweep counts and convergence flags; the ratio of their
   times is printed. ``--quick`` runs the loop on fewer probes and extrapolates its
   time per probe (said so in the output).
2. Sync recall: its floating-point rate (multiply-adds it really performs) as a
   fraction of a float32 GEMM rate measured in the same run, for the Hebbian network
   (low-rank fields, P << N) and a Storkey network (dense N x N fields, float64).

Run: ``.venv/bin/python benchmarks/bench_hopfield.py [--quick] [--threads 1]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from nnpipe.core.hopfield import HopfieldNetwork


def noisy_probes(rng, patterns, n_probes, noise):
    """Stored patterns (cycled) with exactly round(noise * N) bits flipped each."""
    n_patterns, n = patterns.shape
    source = np.arange(n_probes) % n_patterns
    probes = patterns[source].copy()
    k = round(noise * n)
    where = np.argsort(rng.random((n_probes, n)), axis=1)[:, :k]
    np.put_along_axis(probes, where, -np.take_along_axis(probes, where, axis=1), axis=1)
    return probes, source


def reference_recall(weights, orders, probe, max_iter):
    """The textbook loop: for each sweep, for each neuron in order, h = W[i] . s; flip if needed."""
    s = probe.astype(np.float64)
    for sweep in range(max_iter):
        changed = False
        for i in orders[sweep]:
            h = weights[i] @ s
            if h * s[i] < 0:
                s[i] = -s[i]
                changed = True
        if not changed:
            return s.astype(np.int8), True, sweep + 1
    return s.astype(np.int8), False, max_iter


def median_time(fn, repeats):
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def gemm_rate(n_rows, n, dtype, repeats):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n_rows, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b  # warm up
    seconds, _ = median_time(lambda: a @ b, repeats)
    return 2.0 * n_rows * n * n / seconds


def sync_flops_per_step(net):
    engine = net._engine()
    n = net.n_neurons_
    if type(engine).__name__ == "LowRankFields":
        return 4.0 * n * net.n_patterns_, "low-rank fields (X @ s, then X^T @ m)"
    return 2.0 * n * n, f"dense N x N fields ({np.dtype(engine.dtype).name})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--patterns", type=int, default=50)
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="reference loop on 100 probes, extrapolated"
    )
    parser.add_argument("--reference-probes", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: as is)")
    args = parser.parse_args()

    with threadpool_limits(limits=args.threads, user_api="blas"):
        run(args)


def run(args) -> None:
    rng = np.random.default_rng(args.seed)
    n, n_patterns, n_probes = args.neurons, args.patterns, args.probes
    patterns = (2 * rng.integers(0, 2, (n_patterns, n)) - 1).astype(np.int8)
    probes, source = noisy_probes(rng, patterns, n_probes, args.noise)
    blas = [
        (i["internal_api"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"
    ]
    print(
        f"N={n}, patterns={n_patterns}, probes={n_probes}, noise={args.noise:.0%}; "
        f"numpy {np.__version__}, BLAS {blas}, python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )

    gemm32 = gemm_rate(n_probes, n, np.float32, args.repeats)
    gemm64 = gemm_rate(n_probes, n, np.float64, args.repeats)
    print(
        f"GEMM rate ({n_probes}x{n} @ {n}x{n}): float32 {gemm32 / 1e9:.1f} GFLOP/s, "
        f"float64 {gemm64 / 1e9:.1f} GFLOP/s"
    )

    # -- async: nnpipe vs the reference loop ------------------------------------------
    net = HopfieldNetwork(rule="hebbian", update="async", random_state=args.seed).fit(patterns)
    net.recall(probes[:10])  # build the field engine once
    t_async, result = median_time(lambda: net.recall(probes), args.repeats)
    exact = float((result.states == patterns[source]).all(axis=1).mean())
    print(
        f"\nasync recall, nnpipe: median {t_async:.3f} s over {args.repeats} runs "
        f"({n_probes / t_async:,.0f} probes/s); exact recall {exact:.1%}, "
        f"sweeps per probe {result.n_sweeps.mean():.2f}"
    )

    n_ref = args.reference_probes or (min(100, n_probes) if args.quick else n_probes)
    weights = net.weights_q_  # integer-valued: exact sums, the same decisions as nnpipe
    orders = net.sweep_orders(net.max_iter)
    start = time.perf_counter()
    for p in range(n_ref):
        state, converged, n_sweeps = reference_recall(weights, orders, probes[p], net.max_iter)
        assert np.array_equal(state, result.states[p]), f"probe {p}: states differ"
        assert converged == result.converged[p] and n_sweeps == result.n_sweeps[p], p
    t_ref_probe = (time.perf_counter() - start) / n_ref
    t_ref = t_ref_probe * n_probes
    how = "measured" if n_ref == n_probes else f"extrapolated from {n_ref} probes"
    print(
        f"async recall, per-probe per-neuron loop: {t_ref:.2f} s ({how}; "
        f"{t_ref_probe * 1e3:.2f} ms per probe); same states, sweeps and flags: yes"
    )
    speedup = t_ref / t_async
    print(f"async speedup nnpipe / loop: {speedup:.0f}x (target >= 50x: "
          f"{'met' if speedup >= 50 else 'NOT met'})")  # fmt: skip

    # -- sync: fraction of the GEMM rate ------------------------------------------------
    print()
    for rule in ("hebbian", "storkey"):
        sync = HopfieldNetwork(rule=rule, update="sync", random_state=args.seed).fit(patterns)
        sync.recall(probes[:10])
        t_sync, res = median_time(lambda net=sync: net.recall(probes), args.repeats)
        per_step, engine = sync_flops_per_step(sync)
        flops = float(res.n_sweeps.sum()) * per_step
        dense_equivalent = float(res.n_sweeps.sum()) * 2.0 * n * n  # what N x N fields cost
        print(
            f"sync recall, {rule} ({engine}): median {t_sync:.3f} s, "
            f"{res.n_sweeps.mean():.2f} steps per probe, {res.converged.mean():.1%} fixed points, "
            f"{(res.period == 2).mean():.1%} 2-cycles"
        )
        rate = flops / t_sync
        line = (
            f"  {rate / 1e9:.1f} GFLOP/s performed = {rate / gemm32:.0%} of the float32 GEMM rate"
        )
        if np.dtype(sync._engine().dtype) == np.float64:
            line += f" ({rate / gemm64:.0%} of the float64 GEMM rate)"
        else:
            dense = dense_equivalent / t_sync
            line += f"; counted as dense N x N products: {dense / 1e9:.1f} GFLOP/s"
            line += f" = {dense / gemm32:.0%}"
        print(line)


if __name__ == "__main__":
    main()
