"""The embedded demo supercluster: three test-driver hosts of different sizes, idempotent."""

from pathlib import Path

import pytest

from provisioning import demo
from provisioning.drivers import get_driver
from provisioning.models import BaseImage, Hypervisor, K3sVersion, NodeSize, Region

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count() for model in (Region, Hypervisor, NodeSize, K3sVersion, BaseImage)
    )


def test_seed_builds_three_synced_hosts_of_different_sizes(tmp_path: Path) -> None:
    demo.seed(tmp_path)

    hosts = list(Hypervisor.objects.filter(region__slug="demo").order_by("name"))
    assert [h.name for h in hosts] == ["hv-1", "hv-2", "hv-3"]
    assert [h.uri for h in hosts] == [f"test://{tmp_path}/hv-{n}.xml" for n in (1, 2, 3)]
    assert all((tmp_path / f"hv-{n}.xml").is_file() for n in (1, 2, 3))
    # The totals come from libvirt's reading of each node file, not from the seed's table.
    assert len({(h.vcpus_total, h.memory_mib_total) for h in hosts}) == 3
    assert all(h.synced_at is not None and h.state == "active" for h in hosts)


def test_seed_has_room_for_a_hundred_small_nodes(tmp_path: Path) -> None:
    demo.seed(tmp_path)

    small = NodeSize.objects.get(slug="small")
    room = sum(
        min(h.vcpus_capacity // small.vcpus, h.memory_mib_capacity // small.memory_mib)
        for h in Hypervisor.objects.all()
    )
    assert room >= 100


def test_seed_sizes_versions_and_base_images(tmp_path: Path) -> None:
    demo.seed(tmp_path)

    sizes = {s.slug: (s.vcpus, s.memory_mib, s.disk_gib) for s in NodeSize.objects.all()}
    assert sizes == {
        "small": (1, 2048, 20),
        "medium": (2, 4096, 40),
        "large": (4, 8192, 80),
    }
    assert all(s.monthly_price > 0 for s in NodeSize.objects.all())
    assert list(K3sVersion.objects.filter(is_default=True).values_list("version", flat=True)) == [
        "v1.31.4+k3s1"
    ]
    images = BaseImage.objects.select_related("version", "region")
    assert {(i.version.version, i.region.slug) for i in images} == {
        ("v1.31.4+k3s1", "demo"),
        ("v1.30.8+k3s1", "demo"),
    }
    # Every host holds every base volume in the pool it is configured with.
    for host in Hypervisor.objects.all():
        driver = get_driver(host.uri)
        assert all(driver.volume_exists(host.storage_pool, i.volume_name) for i in images)


def test_seed_twice_changes_nothing_and_keeps_staff_edits(tmp_path: Path) -> None:
    demo.seed(tmp_path)
    before = counts()
    Hypervisor.objects.filter(name="hv-2").update(cpu_overcommit=2.0, state="cordoned")
    NodeSize.objects.filter(slug="small").update(monthly_price="12.50")

    demo.seed(tmp_path)

    assert counts() == before == (1, 3, 3, 2, 2)
    hv2 = Hypervisor.objects.get(name="hv-2")
    assert (hv2.cpu_overcommit, hv2.state) == (2.0, "cordoned")
    assert str(NodeSize.objects.get(slug="small").monthly_price) == "12.50"


def test_seed_respects_another_default_version(tmp_path: Path) -> None:
    K3sVersion.objects.create(version="v1.32.0+k3s1", is_default=True)

    demo.seed(tmp_path)

    assert K3sVersion.objects.get(is_default=True).version == "v1.32.0+k3s1"
