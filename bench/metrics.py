"""A /metrics scrape with 1,000 nodes (and 5,000 step rows, 50 hosts) in the database.

Goal: under 50 ms per scrape, in a number of queries that does not grow with the nodes.
Times what the view renders (the registry's collection and the text format), through
the real view with the METRICS_TOKEN bearer token. Run:
DATABASE_URL=postgres://... .venv/bin/python bench/metrics.py   (or without: SQLite)
"""

import os
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from _django import percentile, scratch_database

NODES, HOSTS, SCRAPES = 1000, 50, 60
STEPS = ("import_image", "start_vm", "cloud_init", "fetch_deps", "launch_k3s")


def main() -> None:
    with scratch_database() as vendor:
        from django.conf import settings
        from django.contrib.auth.models import User
        from django.db import connection
        from django.test import Client
        from django.utils import timezone

        from networking.models import Firewall, Network
        from portal import organisations
        from provisioning.models import (
            Cluster,
            Hypervisor,
            K3sVersion,
            Node,
            NodePool,
            NodeSize,
            NodeStep,
            Region,
        )  # fmt: skip

        settings.METRICS_TOKEN = "bench"  # noqa: S105 (a throwaway database's)
        settings.CELERY_BROKER_URL = "memory://"  # the queue depths: an empty broker
        now = timezone.now()
        region = Region.objects.create(slug="bench", name="Bench")
        hosts = Hypervisor.objects.bulk_create(
            Hypervisor(
                name=f"hv-{i:03d}",
                region=region,
                uri=f"test:///b/{i}.xml",
                vcpus_total=64,
                memory_mib_total=262144,
            )
            for i in range(HOSTS)
        )
        user = User.objects.create_user("bench")
        organisation = organisations.create_organisation(user, "Bench")
        network = Network.objects.create(
            organisation=organisation, region=region, name="n", cidr="10.0.0.0/16",
            gateway="10.0.0.1", segment_id=4097,
        )  # fmt: skip
        firewall = Firewall.objects.create(organisation=organisation, network=network, name="f")
        version = K3sVersion.objects.create(version="v1.31.4+k3s1")
        size = NodeSize.objects.create(
            slug="small", vcpus=1, memory_mib=2048, disk_gib=20, monthly_price=Decimal(10)
        )
        clusters = Cluster.objects.bulk_create(
            Cluster(
                organisation=organisation,
                name=f"c{i}",
                region=region,
                k3s_version=version,
                network=network,
                firewall=firewall,
                status="running",
                ready_at=now,
            )
            for i in range(NODES // 5)
        )
        pools = NodePool.objects.bulk_create(
            NodePool(cluster=c, name="p", size=size, count=5) for c in clusters
        )
        nodes = Node.objects.bulk_create(
            Node(
                cluster=pools[i // 5].cluster,
                pool=pools[i // 5],
                name=f"n{i}",
                hypervisor=hosts[i % HOSTS],
                status="running" if i % 10 else "failed",
                error_code="" if i % 10 else "step_timeout",
                ready_at=now if i % 10 else None,
            )
            for i in range(NODES)
        )
        NodeStep.objects.bulk_create(
            NodeStep(node=n, step=s, started_at=now, finished_at=now + timedelta(seconds=k + 1))
            for n in nodes
            for k, s in enumerate(STEPS)
        )
        client = Client(headers={"Authorization": "Bearer bench"})
        assert client.get("/metrics").status_code == 200  # warm
        queries: list[str] = []

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            queries.append(sql)
            return execute(sql, params, many, context)

        # Counted as they run (the test client's request signals reset Django's own log).
        with connection.execute_wrapper(count):
            assert client.get("/metrics").status_code == 200
        timings = []
        for _ in range(SCRAPES):
            started = time.perf_counter()
            response = client.get("/metrics")
            timings.append((time.perf_counter() - started) * 1000)
        size_kib = len(response.content) / 1024
    print(
        f"{vendor}: {NODES} nodes, {NODES * len(STEPS)} step rows, {HOSTS} hosts; "
        f"scrape p50 {percentile(timings, 0.5):.1f} ms, p95 {percentile(timings, 0.95):.1f} ms "
        f"(goal < 50 ms); {len(queries)} queries; {size_kib:.0f} KiB of text"
    )


if __name__ == "__main__":
    # Its own, empty multi-process folder: DATA_DIR's collects the samples of every process
    # run there since the last `serve` (a local test run leaves dozens of files), and a
    # scrape reads them all (18 ms with it empty, 55 ms with 79 stale files here).
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        main()
