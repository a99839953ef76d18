"""The recall job on s3:// (moto's S3 server): an interrupted job rerun recalls every probe once."""

from __future__ import annotations

import numpy as np
import pytest
import s3fs

from nnpipe.core.hopfield import HopfieldNetwork
from nnpipe.data.partition_io import read_patterns
from nnpipe.data.recall_job import plan_partitions, read_results, run_recall_job
from nnpipe.data.synthetic import write_hopfield_dataset

pytestmark = pytest.mark.service

N_PROBES = 300


class Interrupted(Exception):
    """Stands for the job's process dying after some partitions."""


def _write(root: str) -> tuple[HopfieldNetwork, np.ndarray]:
    write_hopfield_dataset(
        root, n_patterns=3, n_units=32, n_probes=N_PROBES, rows_per_partition=60, random_state=2
    )
    patterns = read_patterns(root)
    return HopfieldNetwork(max_iter=20, random_state=0).fit(patterns), patterns


def _states(output: str) -> tuple[np.ndarray, np.ndarray]:
    table = read_results(output, ["probe_id", "state"])
    ids = table.column("probe_id").to_numpy()
    order = np.argsort(ids, kind="stable")
    return ids[order], np.stack(table.column("state").to_numpy(zero_copy_only=False))[order]


def test_an_interrupted_job_on_s3_reruns_only_unfinished_partitions(s3_env, tmp_path):
    root, output = f"s3://{s3_env}/hop", f"s3://{s3_env}/results"
    network, patterns = _write(root)

    def die_after_two(stats, done, todo):
        if done == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_recall_job(network, patterns, f"{root}/probes", output, on_partition=die_after_two)
    # A partition cut short: the first half of a result file under its final name
    # (a store that published partial uploads would leave this behind).
    plan = plan_partitions(f"{root}/probes", output)
    fs = s3fs.S3FileSystem()
    whole = fs.cat_file(plan[0].output)
    fs.pipe_file(plan[2].output, whole[: len(whole) // 2])

    summary = run_recall_job(network, patterns, f"{root}/probes", output)
    assert (summary.n_partitions, summary.n_partitions_skipped) == (5, 2)
    assert summary.n_partitions_run == 3 and summary.n_probes == N_PROBES
    ids, states = _states(output)
    assert np.array_equal(ids, np.arange(N_PROBES))  # every probe exactly once

    local_net, local_patterns = _write(str(tmp_path / "hop"))
    run_recall_job(local_net, local_patterns, tmp_path / "hop" / "probes", tmp_path / "out")
    local_ids, local_states = _states(str(tmp_path / "out"))
    assert np.array_equal(ids, local_ids) and np.array_equal(states, local_states)
    again = run_recall_job(network, patterns, f"{root}/probes", output)
    assert again.n_partitions_skipped == 5 and again.n_partitions_run == 0
