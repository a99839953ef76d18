"""The Dask cluster a flow uses: dashboard on the local cluster, Dask's own address setting."""

from __future__ import annotations

import io
import urllib.request

import dask
from distributed import LocalCluster

from flows import progress
from flows.cluster import dask_client, describe, scheduler_address


def test_local_cluster_serves_its_dashboard_on_loopback_and_prints_the_link():
    out = io.StringIO()
    with progress.use_reporter(progress.Reporter(out, bars=False)), dask_client() as client:
        info = describe(client)
        link = info["dashboard"]
        assert link.startswith("http://127.0.0.1:") and link.endswith("/status")
        with urllib.request.urlopen(link, timeout=30) as response:
            assert response.status == 200
    assert out.getvalue() == f"[nnpipe] Dask dashboard: {link}\n"


def test_dask_scheduler_address_setting_is_used_without_a_flag(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with LocalCluster(
        n_workers=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None
    ) as cluster:
        with dask.config.set({"scheduler-address": cluster.scheduler_address}):
            assert scheduler_address() == (cluster.scheduler_address, "DASK_SCHEDULER_ADDRESS")
            with dask_client() as client:
                assert describe(client)["scheduler"] == cluster.scheduler_address
                assert describe(client)["n_workers"] == 1
        # The flag wins over the setting.
        with dask.config.set({"scheduler-address": "tcp://127.0.0.1:1"}):
            assert scheduler_address(cluster.scheduler_address)[0] == cluster.scheduler_address


def _worker_settings() -> tuple:
    return (
        dask.config.get("distributed.worker.profile.enabled"),
        dask.config.get("distributed.admin.tick.interval"),
    )


def test_local_worker_processes_run_without_the_profiler_and_fast_ticks():
    with dask_client(n_workers=1, processes=True) as client:
        assert list(client.run(_worker_settings).values()) == [(False, "1s")]
        # The scheduler (in this process) ticks at the same pace.
        assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler._tick_interval) == 1
    # The settings hold for the cluster only.
    assert dask.config.get("distributed.worker.profile.enabled") is True
