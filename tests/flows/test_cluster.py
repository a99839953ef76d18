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
