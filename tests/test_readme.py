"""README.md tells the truth: its Python and shell examples run as written, in order,
and its sample report is what `nnpipe demo` prints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import seed_server_database

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
# Every shell block runs, in order, unless marked "not run" with the reason.
SHELL = re.findall(r"(<!-- README test: ([^\n]*) -->\n)?```bash\n(.*?)```", README, flags=re.S)
SHELL_BLOCKS = [code for _, mark, code in SHELL if not mark.startswith("not run: ")]
SKIPPED = [(mark, code) for _, mark, code in SHELL if mark.startswith("not run: ")]
# The Quickstart's sample report: what `nnpipe demo` prints, with what changes from
# run to run (times, rates, paths, run ids) shown as "…".
REPORT_MARK = "<!-- README test: the report of `nnpipe demo`, run-dependent parts as … -->"
REPORT = re.search(re.escape(REPORT_MARK) + r"\n```\n(.*?)```", README, flags=re.S)


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


def test_every_shell_block_runs_or_says_why_not():
    assert len(SHELL_BLOCKS) >= 2 and REPORT is not None
    for mark, code in SKIPPED:
        # Only set-up, servers and docker are left out, each naming where it is covered.
        assert re.search(r"make |serve|server|docker|\.internal", code), code
        assert "covered by" in mark or "compares its report" in mark, mark
    assert not any(re.search(r"^\s*(docker|prefect server|make )", c, re.M) for c in SHELL_BLOCKS)


def mask_report(text: str, workdir: Path) -> str:
    """The demo's report with run-dependent parts as "…" (as the README shows it)."""
    text = text.replace(str(workdir), "…")
    text = re.sub(r"\b[0-9a-f]{32}\b", "…", text)  # run ids
    text = re.sub(r"finished in \d+ s", "finished in … s", text)
    text = re.sub(r"in \d+(\.\d+)? s;", "in … s;", text)
    return re.sub(r"\d+ probes/s", "… probes/s", text)


def shell_env(tmp_path: Path) -> dict[str, str]:
    """A reader's shell: this environment's `nnpipe` on PATH, this tree importable."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    env.pop("PREFECT_API_URL", None)  # the local Prefect server the commands start and reuse
    return env


@pytest.mark.slow
def test_readme_demo_report_and_shell_blocks_run_in_order(tmp_path):
    # Like a reader in a fresh clone: `make demo` (that is, `nnpipe demo`) first, then
    # every shell block in order, in one directory (examples/ from the repository).
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = shell_env(tmp_path)
    # The local Prefect server the demo starts and the blocks reuse, as a reader's would.
    env["NNPIPE_SERVER_HOME"] = str(tmp_path / "prefect-server")
    seed_server_database(tmp_path / "prefect-server")
    try:
        run_demo_and_blocks(tmp_path, env)
    finally:
        subprocess.run(["nnpipe", "server", "stop"], cwd=tmp_path, env=env, timeout=60)


def run_demo_and_blocks(tmp_path: Path, env: dict[str, str]) -> None:
    demo = subprocess.run(
        ["nnpipe", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert demo.returncode == 0, demo.stderr
    report = mask_report(demo.stdout, tmp_path)
    if os.environ.get("NNPIPE_UPDATE_README") == "1":  # rewrite the sample from this run
        (ROOT / "README.md").write_text(
            README.replace(REPORT.group(0), REPORT.group(0).replace(REPORT.group(1), report))
        )
    else:
        assert report == REPORT.group(1), (
            f"README sample report differs from `nnpipe demo`:\n{report}"
        )
    for number, code in enumerate(SHELL_BLOCKS, start=1):
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, f"README shell block {number} failed:\n{code}\n{proc.stderr}"
