"""The Hopfield recall job: one result file per partition, safe reruns, Dask == in-process."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nnpipe.core.hopfield import HopfieldNetwork
from nnpipe.data import recall_job
from nnpipe.data.partition_io import read_patterns
from nnpipe.data.recall_job import (
    is_done,
    network_fingerprint,
    plan_partitions,
    read_results,
    run_recall_job,
)
from nnpipe.data.synthetic import write_hopfield_dataset

N_PROBES = 900


@pytest.fixture(scope="module")
def hopfield_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("hopfield")
    # 7 partitions of 130 rows and a last short one: uneven on purpose.
    write_hopfield_dataset(
        root,
        n_patterns=5,
        n_units=48,
        n_probes=N_PROBES,
        flip_fraction=0.15,
        rows_per_partition=130,
        random_state=3,
    )
    patterns = read_patterns(root)
    network = HopfieldNetwork(rule="hebbian", update="async", max_iter=30, random_state=1)
    return root / "probes", patterns, network.fit(patterns)


@pytest.fixture(scope="module")
def local_run(hopfield_data, tmp_path_factory):
    probes, patterns, network = hopfield_data
    out = tmp_path_factory.mktemp("in-process")
    summary = run_recall_job(network, patterns, probes, out)
    return out, summary


def sorted_results(out) -> pa.Table:
    return read_results(out).sort_by("probe_id")


def test_every_probe_recalled_once_and_equal_to_direct_recall(hopfield_data, local_run):
    probes, patterns, network = hopfield_data
    out, summary = local_run
    table = sorted_results(out)
    ids = table.column("probe_id").to_numpy()
    np.testing.assert_array_equal(ids, np.arange(N_PROBES))  # each probe exactly once
    assert summary.n_probes == N_PROBES and summary.n_partitions == 7
    # The same probes recalled in one batch, without the job: identical states.
    source = pa.concat_tables([pq.read_table(p) for p in sorted(probes.glob("*.parquet"))])
    source = source.sort_by("probe_id")
    X = np.stack(source.column("probe").to_numpy(zero_copy_only=False)).astype(np.int8)
    direct = network.recall(X)
    states = np.stack(table.column("state").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(states, direct.states)
    np.testing.assert_array_equal(table.column("converged").to_numpy(), direct.converged)
    np.testing.assert_allclose(table.column("energy").to_numpy(), direct.energy)
    truth = patterns[source.column("pattern_id").to_numpy()]
    exact = (direct.states == truth).all(axis=1)
    assert summary.exact_recall_rate == pytest.approx(exact.mean())
    assert summary.mean_overlap == pytest.approx((direct.states * truth).mean())
    assert summary.converged_fraction == pytest.approx(direct.converged.mean())
    # Final states by kind, counted as the network classifies the direct recall.
    labels, counts = np.unique(network.classify(direct.states).labels, return_counts=True)
    assert summary.kinds == dict(zip(labels.tolist(), counts.tolist(), strict=True))
    assert sum(summary.kinds.values()) == N_PROBES


def test_slices_of_a_partition_give_the_whole_partitions_results(
    hopfield_data, local_run, tmp_path, monkeypatch
):
    # Partitions of 130 probes in slices of 16 (and a short last one): the same
    # files, row for row, as recalled in one piece, and the same counts.
    probes, patterns, network = hopfield_data
    out, summary = local_run
    monkeypatch.setattr(recall_job, "SLICE_ELEMENTS", 16 * patterns.shape[1])
    sliced = run_recall_job(network, patterns, probes, tmp_path)
    assert sorted_results(tmp_path).equals(sorted_results(out))
    assert sliced.exact_recall_rate == summary.exact_recall_rate
    assert sliced.kinds == summary.kinds


def test_dask_cluster_with_two_workers_gives_the_in_process_results(
    hopfield_data, local_run, tmp_path
):
    distributed = pytest.importorskip("distributed")
    probes, patterns, network = hopfield_data
    out, summary = local_run
    # Thread workers keep the test fast; what a worker process would receive is the
    # pickled network, checked below to recall the same states.
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        finished = []
        dask_summary = run_recall_job(
            network,
            patterns,
            probes,
            tmp_path,
            client=client,
            on_partition=lambda stats, done, todo: finished.append(stats.key),
        )
        used = {w for w, s in client.run(lambda: 1).items()}
    assert len(used) == 2
    assert sorted(finished) == sorted(p.name for p in probes.glob("*.parquet"))
    assert sorted_results(tmp_path).equals(sorted_results(out))
    assert dask_summary.exact_recall_rate == summary.exact_recall_rate
    assert dask_summary.n_probes == N_PROBES
    shipped = pickle.loads(pickle.dumps(network))
    X = np.stack(read_results(out).column("state").to_numpy(zero_copy_only=False))[:50]
    np.testing.assert_array_equal(shipped.recall(X).states, network.recall(X).states)


def test_rerun_skips_finished_partitions_and_repairs_the_rest(hopfield_data, local_run, tmp_path):
    probes, patterns, network = hopfield_data
    reference = sorted_results(local_run[0])
    first = run_recall_job(network, patterns, probes, tmp_path)
    assert first.n_partitions_run == 7
    files = sorted(tmp_path.glob("*.parquet"))
    # An interrupted run: one result missing, one truncated, one stray temp file.
    files[0].unlink()
    files[1].write_bytes(files[1].read_bytes()[:100])
    (tmp_path / f".{files[2].name}.deadbeef.tmp").write_bytes(b"partial")
    again = run_recall_job(network, patterns, probes, tmp_path)
    assert again.n_partitions_run == 2 and again.n_partitions_skipped == 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert sorted_results(tmp_path).equals(reference)  # nothing lost, nothing twice
    done = run_recall_job(network, patterns, probes, tmp_path)
    assert done.n_partitions_run == 0 and done.n_probes == N_PROBES


def test_results_of_another_network_are_recomputed(hopfield_data, tmp_path):
    probes, patterns, network = hopfield_data
    run_recall_job(network, patterns, probes, tmp_path)
    storkey = HopfieldNetwork(rule="storkey", max_iter=30, random_state=1).fit(patterns)
    assert network_fingerprint(storkey) != network_fingerprint(network)
    plan = plan_partitions(probes, tmp_path)
    assert all(is_done(p, network_fingerprint(network)) for p in plan)
    assert not any(is_done(p, network_fingerprint(storkey)) for p in plan)
    summary = run_recall_job(storkey, patterns, probes, tmp_path)
    assert summary.n_partitions_run == 7
    assert read_results(tmp_path).num_rows == N_PROBES


def test_non_bipolar_probe_is_refused_naming_file_row_and_value(hopfield_data, tmp_path):
    _, patterns, network = hopfield_data
    probes = tmp_path / "probes"
    probes.mkdir()
    rows = np.ones((3, 48), dtype=np.int8)
    rows[2, 5] = 0
    column = pa.FixedSizeListArray.from_arrays(pa.array(rows.ravel()), 48)
    pq.write_table(
        pa.table({"probe": column, "pattern_id": pa.array([0, 1, 2])}), probes / "bad.parquet"
    )
    with pytest.raises(ValueError, match=r"bad\.parquet.*row 2, position 5 holds 0"):
        run_recall_job(network, patterns, probes, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.parquet"))


def test_missing_probe_column_and_empty_dataset_are_named(hopfield_data, tmp_path):
    _, patterns, network = hopfield_data
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no .parquet files"):
        run_recall_job(network, patterns, tmp_path / "empty", tmp_path / "out")
    other = tmp_path / "other"
    other.mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), other / "p.parquet")
    with pytest.raises(ValueError, match="no column 'probe'; columns present: x"):
        run_recall_job(network, patterns, other, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        run_recall_job(network, patterns, tmp_path / "nowhere", tmp_path / "out")


def test_results_of_probe_files_no_longer_there_are_removed(tmp_path):
    # Probes rewritten with fewer partitions (nnpipe prepare --overwrite): the old
    # files' results must not stay in the output and be read with the new ones.
    write_hopfield_dataset(tmp_path / "d", n_units=16, n_probes=40, rows_per_partition=10)
    patterns = read_patterns(tmp_path / "d")
    network = HopfieldNetwork(max_iter=20, random_state=0).fit(patterns)
    run_recall_job(network, patterns, tmp_path / "d" / "probes", tmp_path / "out")
    assert read_results(tmp_path / "out").num_rows == 40
    write_hopfield_dataset(
        tmp_path / "d", n_units=16, n_probes=40, rows_per_partition=20, overwrite=True
    )
    pq.write_table(pa.table({"a": [1]}), tmp_path / "out" / "mine.parquet")  # not a result
    summary = run_recall_job(network, patterns, tmp_path / "d" / "probes", tmp_path / "out")
    assert summary.n_partitions == 2
    assert (tmp_path / "out" / "mine.parquet").is_file()
    (tmp_path / "out" / "mine.parquet").unlink()
    assert read_results(tmp_path / "out").num_rows == 40 == summary.n_probes
