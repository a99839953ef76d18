"""The ``nnpipe`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from nnpipe import __version__
from nnpipe.core.scalers import StandardScaler


def _demo(args: argparse.Namespace) -> int:
    """Stream a synthetic regression set through a scaler in batches and save it."""
    out = Path(args.workdir)
    rng = np.random.default_rng(args.seed)
    scaler = StandardScaler(dtype="float64")
    for _ in range(20):  # 20 batches of 5 000 rows, never all in memory at once
        X = rng.normal(-2.0, 3.0, size=(5000, 8))  # (batch, n_features)
        scaler.partial_fit(X)
    path = out / "demo_scaler.npz"
    scaler.save(path)
    print(f"nnpipe demo: fitted a StandardScaler on {scaler.n_samples_seen_} rows in 20 batches")
    print(f"  mean  {np.round(scaler.mean_, 3)}")
    print(f"  scale {np.round(scaler.scale_, 3)}")
    print(f"  saved to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnpipe", description=__doc__)
    parser.add_argument("--version", action="version", version=f"nnpipe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the end-to-end demo on embedded defaults")
    demo.add_argument("--workdir", default="nnpipe-work", help="where results are written")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
