"""Placement decisions for a 3-node cluster against 1,000 hosts with mixed load.

Goal: <= 10 ms per decision on PostgreSQL, and a number of queries that does not grow
with the number of hosts. Run: DATABASE_URL=postgres://... .venv/bin/python bench/placement.py
"""

import random
import time
from decimal import Decimal

from _django import percentile, scratch_database

HOSTS = 1000
DECISIONS = 300


def main() -> None:
    with scratch_database() as vendor:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from provisioning import placement
        from provisioning.models import Hypervisor, HypervisorState, NodeSize, Region

        rng = random.Random(7)
        region = Region.objects.create(slug="bench", name="Bench")
        size = NodeSize.objects.create(
            slug="small", vcpus=1, memory_mib=2048, disk_gib=20, monthly_price=Decimal(10)
        )

        def hosts(count: int, offset: int = 0) -> None:
            rows = []
            for i in range(offset, offset + count):
                vcpus = rng.choice([16, 32, 64])
                memory = vcpus * 4096
                load = rng.random()
                rows.append(
                    Hypervisor(
                        name=f"hv-{i:04d}",
                        region=region,
                        uri=f"test:///bench/{i}.xml",
                        state=HypervisorState.CORDONED
                        if rng.random() < 0.05
                        else HypervisorState.ACTIVE,
                        vcpus_total=vcpus,
                        memory_mib_total=memory,
                        cpu_overcommit=4.0,
                        vcpus_allocated=int(vcpus * 4 * load),
                        memory_mib_allocated=int(memory * load),
                    )
                )
            Hypervisor.objects.bulk_create(rows)

        def queries_per_decision() -> int:
            with CaptureQueriesContext(connection) as captured:
                placement.plan(region, [size] * 3)
            return len(captured)

        hosts(10)
        few = queries_per_decision()
        hosts(HOSTS - 10, offset=10)
        many = queries_per_decision()
        timings = []
        for _ in range(DECISIONS):
            start = time.perf_counter()
            chosen = placement.plan(region, [size] * 3)
            timings.append((time.perf_counter() - start) * 1000)
        assert chosen.host_count == 3
        print(f"database: {vendor}; hosts: {HOSTS}; decisions: {DECISIONS} (3 small nodes each)")
        print(f"queries per decision: {few} with 10 hosts, {many} with {HOSTS} hosts")
        p50, p95 = percentile(timings, 0.5), percentile(timings, 0.95)
        print(f"ms per decision: p50 {p50:.2f}, p95 {p95:.2f}, max {max(timings):.2f} (goal <= 10)")
        print(f"example: {chosen.summary}")


if __name__ == "__main__":
    main()
