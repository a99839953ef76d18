"""README.md tells the truth: every Python example in it runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 10


@pytest.mark.slow
def test_readme_python_examples_run_in_order(tmp_path):
    # One interpreter per block, all in one directory: later blocks read what
    # earlier ones wrote (model.npz, mlflow.db), as a reader following along would.
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    for number, code in enumerate(BLOCKS, start=1):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"README python block {number} failed:\n{code}\n{proc.stderr}"
