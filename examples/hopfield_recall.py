"""Hopfield associative memory, end to end: store, recall, classify, capacity.

    .venv/bin/python examples/hopfield_recall.py [--grid letters.png] [--plot capacity.png]

1. Store four 7x7 letters, recall a damaged one, and watch the energy fall; draw
   letters, damaged probes and recalled states as pictures (--grid).
2. Recall random probes and say which kind of state each one settled in.
3. A modern (continuous) Hopfield network storing 30x more patterns than neurons.
4. The capacity curve: Hebbian recall collapses near P = 0.138 N; Storkey holds.
"""

from __future__ import annotations

import argparse

import numpy as np

from nnpipe import HopfieldNetwork, ModernHopfield
from nnpipe.core.hopfield import capacity_curve, to_bipolar
from nnpipe.tracking import capacity_curve_figure, hopfield_recall_figure, save_png

LETTERS = {
    "H": ["#.....#", "#.....#", "#.....#", "#######", "#.....#", "#.....#", "#.....#"],
    "O": [".#####.", "#.....#", "#.....#", "#.....#", "#.....#", "#.....#", ".#####."],
    "X": ["#.....#", ".#...#.", "..#.#..", "...#...", "..#.#..", ".#...#.", "#.....#"],
    "T": ["#######", "...#...", "...#...", "...#...", "...#...", "...#...", "...#..."],
}


def picture(state: np.ndarray) -> list[str]:
    return ["".join("#" if v > 0 else "." for v in row) for row in state.reshape(7, 7)]


def letters_demo(rng: np.random.Generator, grid: str | None) -> None:
    bits = np.array([[[c == "#" for c in row] for row in rows] for rows in LETTERS.values()])
    patterns = to_bipolar(bits.reshape(len(LETTERS), -1))  # (4, 49) in {-1, +1}
    # Letters overlap a lot; the pseudo-inverse rule copes with correlated patterns.
    net = HopfieldNetwork(rule="pseudoinverse", random_state=0).fit(patterns)
    probe = damaged(patterns[0], 8, rng)  # 8 of 49 pixels of "H" flipped
    result = net.recall(probe[None])
    kind = net.classify(result)
    print("1. damaged H -> recalled state")
    for before, after in zip(picture(probe), picture(result.states[0]), strict=True):
        print(f"   {before}   {after}")
    print(
        f"   energy {net.energy(probe[None])[0]:.2f} -> {result.energy[0]:.2f} in "
        f"{result.n_sweeps[0]} sweeps; state is {kind.labels[0]} pattern {kind.indices[0]}"
    )
    if grid:
        # Its own generator: the demos after this one print the same with or without it.
        letters_grid(net, patterns, np.random.default_rng(1), grid)


def damaged(pattern: np.ndarray, n_flips: int, rng: np.random.Generator) -> np.ndarray:
    probe = pattern.copy()
    probe[rng.choice(pattern.size, n_flips, replace=False)] *= -1
    return probe


def letters_grid(
    net: HopfieldNetwork, patterns: np.ndarray, rng: np.random.Generator, path: str
) -> None:
    """Each letter damaged (8 pixels), an inverted T, and random starts: as a PNG."""
    # An inverted T (4 pixels left as they were) falls into the reversed T: -x is a
    # fixed point whenever x is.
    probes = [damaged(p, 8, rng) for p in patterns] + [damaged(-patterns[3], 4, rng)]
    sources = [0, 1, 2, 3, 3]
    # Random starts settle anywhere; show the first that ends in a mixture and the
    # first that ends in a spurious state (neither is a letter).
    starts = (2 * rng.integers(0, 2, (200, patterns.shape[1])) - 1).astype(np.int8)
    found = net.classify(net.recall(starts))
    for kind in ("mixture", "spurious"):
        hits = np.flatnonzero(found.labels == kind)
        if hits.size:
            probes.append(starts[hits[0]])
            sources.append(int(found.nearest[hits[0]]))
    probes = np.array(probes)
    result = net.recall(probes)
    kinds = net.classify(result)
    figure = hopfield_recall_figure(
        patterns, probes, result.states, (7, 7), sources=sources, kinds=kinds,
        pattern_names=list(LETTERS), title="Letters in a Hopfield network (pseudo-inverse rule)",
    )  # fmt: skip
    save_png(figure, path)
    print(f"   {len(probes)} probes drawn to {path}: {', '.join(kinds.labels)}")


def kinds_demo(rng: np.random.Generator) -> None:
    n = 200
    patterns = (2 * rng.integers(0, 2, (6, n)) - 1).astype(np.int8)
    net = HopfieldNetwork(random_state=1).fit(patterns)
    probes = (2 * rng.integers(0, 2, (500, n)) - 1).astype(np.int8)  # random starts
    result = net.recall(probes)
    kinds = net.classify(result)
    print("\n2. 500 random probes, Hebbian N=200, 6 patterns; where they settled:")
    print(f"   {kinds.counts()}")
    mixture = np.flatnonzero(kinds.labels == "mixture")
    if mixture.size:
        i = mixture[0]
        print(
            f"   e.g. probe {i}: mixture of patterns {kinds.indices[i]} with signs {kinds.signs[i]}"
        )
    sync = net.set_params(update="sync").recall(probes)
    print(f"   sync updates instead: {int((sync.period == 2).sum())} probes end in a 2-cycle")


def modern_demo(rng: np.random.Generator) -> None:
    n, n_patterns = 64, 2000
    patterns = rng.choice([-1.0, 1.0], size=(n_patterns, n))
    net = ModernHopfield(beta=1.0).fit(patterns)
    probes = patterns[:200].copy()
    probes[:, :10] *= -1  # 10 of 64 bits flipped
    result = net.recall(probes)
    exact = (np.sign(result.states) == patterns[:200]).all(axis=1).mean()
    print(
        f"\n3. modern Hopfield, {n_patterns} patterns in {n} dimensions "
        f"(load {n_patterns / n:.0f}, vs 0.138 classically): exact recall {exact:.0%}, "
        f"{result.n_iter.mean():.1f} updates per probe"
    )


def capacity_demo(plot: str | None) -> None:
    loads = [0.05, 0.1, 0.14, 0.2, 0.3]
    print("\n4. capacity, N=300, 10% noise: exact recall fraction")
    tables = {}
    for rule in ("hebbian", "storkey"):
        tables[rule] = capacity_curve(
            300, loads, [0.1], rule=rule, trials=2, probes_per_trial=40, random_state=0
        )
        cells = "  ".join(
            f"{a:.2f}: {e:.2f}"
            for a, e in zip(tables[rule]["load"], tables[rule]["exact_recall"], strict=True)
        )
        print(f"   {rule:8s} {cells}")
    if plot:
        table = {k: tables["hebbian"][k] + tables["storkey"][k] for k in tables["hebbian"]}
        save_png(capacity_curve_figure(table, title="Hopfield capacity, 10% noise"), plot)
        print(f"   plot written to {plot}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--grid", metavar="PNG", default="hopfield_letters.png",
        help="save the letters' recall pictures here (default %(default)s; '' for none)",
    )  # fmt: skip
    parser.add_argument("--plot", metavar="PNG", help="save the capacity curve here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    letters_demo(rng, args.grid)
    kinds_demo(rng)
    modern_demo(rng)
    capacity_demo(args.plot)


if __name__ == "__main__":
    main()
