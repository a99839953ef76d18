"""README.md tells the truth: every Python example in it runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
# Shell examples marked to run as written (the `nnpipe` command end to end).
SHELL_MARK = "<!-- README test: this block runs as written -->"
SHELL_BLOCKS = re.findall(re.escape(SHELL_MARK) + r"\n```bash\n(.*?)```", README, flags=re.S)


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


def test_readme_marks_its_command_line_examples():
    assert len(SHELL_BLOCKS) == README.count(SHELL_MARK) >= 1


@pytest.mark.slow
def test_readme_command_line_examples_run(tmp_path):
    # The `nnpipe` of this interpreter's environment, as a reader's shell would find it.
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    env.pop("PREFECT_API_URL", None)  # the command's own temporary Prefect server
    for number, code in enumerate(SHELL_BLOCKS, start=1):
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"README shell block {number} failed:\n{code}\n{proc.stderr}"
