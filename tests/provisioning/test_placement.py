"""Placement: filter (region, state, capacity), spread, pack, race-free claims."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections, transaction

from provisioning import placement
from provisioning.models import HypervisorState, NodeSize, Region


@pytest.fixture
def region(db: None) -> Region:
    return Region.objects.create(slug="r1", name="Region 1")


@pytest.fixture
def other_region(db: None) -> Region:
    return Region.objects.create(slug="r2", name="Region 2")


def test_three_nodes_spread_over_three_hosts(region, sized_host, small: NodeSize) -> None:
    for name in ("a", "b", "c"):
        sized_host(name, 16, 65536, region)
    plan = placement.plan(region, [small] * 3)
    assert plan.host_count == 3
    assert plan.summary == "3 nodes on 3 hosts in r1"


def test_more_nodes_than_hosts_spread_evenly(region, sized_host, small) -> None:
    for name in ("a", "b"):
        sized_host(name, 16, 65536, region)
    plan = placement.plan(region, [small] * 4)
    assert sorted(Counter(plan.hosts).values()) == [2, 2]


def test_among_equals_the_fullest_host_wins(region, sized_host, small) -> None:
    roomy = sized_host("roomy", 64, 262144, region)
    tight = sized_host("tight", 4, 8192, region)
    plan = placement.plan(region, [small])
    assert plan.hosts == [tight.pk]
    assert roomy.pk not in plan.hosts


def test_cordoned_offline_and_foreign_hosts_are_skipped(
    region, other_region, sized_host, small
) -> None:
    sized_host("cordoned", 64, 262144, region, state=HypervisorState.CORDONED)
    sized_host("offline", 64, 262144, region, state=HypervisorState.OFFLINE)
    sized_host("elsewhere", 64, 262144, other_region)
    ok = sized_host("ok", 4, 8192, region)
    assert placement.plan(region, [small]).hosts == [ok.pk]


def test_capacity_counts_allocations_and_overcommit(region, sized_host, small, large) -> None:
    host = sized_host("h", 4, 16384, region, vcpus_allocated=2, cpu_overcommit=2.0)
    # 4 x 2 = 8 vCPU capacity, 2 used: a large (4 vCPU, 8 GiB) still fits, a second does not.
    assert placement.plan(region, [large]).hosts == [host.pk]
    with pytest.raises(placement.PlacementError) as error:
        placement.plan(region, [large, large])
    assert "region r1 for 1 more node of size large" in str(error.value)


def test_nothing_fits_names_what_is_short(region, sized_host, small) -> None:
    sized_host("tiny", 1, 2048, region)
    with pytest.raises(placement.PlacementError, match="for 2 more nodes of size small"):
        placement.plan(region, [small] * 3)


def test_scale_up_keeps_spreading(region, sized_host, small) -> None:
    a = sized_host("a", 16, 65536, region)
    b = sized_host("b", 16, 65536, region)
    plan = placement.plan(region, [small], existing=Counter({a.pk: 2, b.pk: 1}))
    assert plan.hosts == [b.pk]


def test_claim_and_release_restore_allocations(region, sized_host, small) -> None:
    from tests.provisioning.factories import make_cluster_node

    host = sized_host("h", 8, 32768, region)
    with transaction.atomic():
        plan = placement.claim(region, [small, small])
    host.refresh_from_db()
    assert (host.vcpus_allocated, host.memory_mib_allocated) == (2, 4096)
    assert plan.hosts == [host.pk, host.pk]
    node = make_cluster_node(host, small)
    assert placement.release(node) is True
    assert placement.release(node) is False  # exactly once
    host.refresh_from_db()
    assert (host.vcpus_allocated, host.memory_mib_allocated) == (1, 2048)


def test_explain_says_why(region, sized_host, small) -> None:
    sized_host("full", 1, 1024, region)
    sized_host("cordoned", 8, 32768, region, state=HypervisorState.CORDONED)
    sized_host("fine", 8, 32768, region)
    reasons = {v.host: v.reason for v in placement.explain(region, small)}
    assert reasons["full"].startswith("rejected: 1024 MiB free")
    assert reasons["cordoned"] == "rejected: cordoned"
    assert reasons["fine"].startswith("fits")


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_overcommit(sized_host, small) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks (CI runs it; SQLite serialises writers)")
    region = Region.objects.create(slug="race", name="Race")
    host = sized_host("only", 10, 10 * 2048, region)
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def launch() -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                placement.claim(region, [small])
            outcomes.append("ok")
        except placement.PlacementError:
            outcomes.append("full")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=launch) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    host.refresh_from_db()
    assert outcomes.count("ok") == 10
    assert outcomes.count("full") == 10
    assert host.vcpus_allocated == 10
    assert host.memory_mib_allocated == 10 * 2048
