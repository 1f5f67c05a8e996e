"""The embedded demo supercluster: region `demo`, three test-driver hosts, sizes, K3s versions.

`seed()` is idempotent: it creates what is missing and leaves staff's later edits alone,
except that each host's URI follows `data_dir` (the node files live there).
"""

from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from provisioning import inventory
from provisioning.drivers.xml import test_node_xml
from provisioning.models import BaseImage, Hypervisor, K3sVersion, NodeSize, Region

REGION = "demo"
STORAGE_POOL = "default"
CPU_OVERCOMMIT = 4.0


class DemoHost(NamedTuple):
    name: str
    vcpus: int
    memory_gib: int
    pool_gib: int


# Different sizes, so placement has something to weigh; with 4x CPU overcommit they hold
# 144 `small` nodes (memory is the limit: 288 GiB / 2 GiB).
HOSTS = (
    DemoHost("hv-1", 16, 64, 1000),
    DemoHost("hv-2", 24, 96, 1500),
    DemoHost("hv-3", 32, 128, 2000),
)
SIZES = {
    "small": (1, 2048, 20, Decimal("10.00")),
    "medium": (2, 4096, 40, Decimal("20.00")),
    "large": (4, 8192, 80, Decimal("40.00")),
}
DEFAULT_VERSION = "v1.31.4+k3s1"
VERSIONS = (DEFAULT_VERSION, "v1.30.8+k3s1")


def base_volume(version: str) -> str:
    """The base volume of a version; never starts with DOMAIN_PREFIX, which marks node disks."""
    return f"base-{version.replace('+', '-')}.qcow2"


def seed(data_dir: Path) -> None:
    region, _ = Region.objects.get_or_create(slug=REGION, defaults={"name": "Demo"})
    for slug, (vcpus, memory_mib, disk_gib, price) in SIZES.items():
        NodeSize.objects.get_or_create(
            slug=slug,
            defaults={
                "vcpus": vcpus,
                "memory_mib": memory_mib,
                "disk_gib": disk_gib,
                "monthly_price": price,
            },
        )
    for version in VERSIONS:
        k3s, _ = K3sVersion.objects.get_or_create(version=version)
        BaseImage.objects.get_or_create(
            version=k3s, region=region, defaults={"volume_name": base_volume(version)}
        )
    if not K3sVersion.objects.filter(is_default=True).exists():
        K3sVersion.objects.filter(version=DEFAULT_VERSION).update(is_default=True)

    volumes = tuple(base_volume(version) for version in VERSIONS)
    for host in HOSTS:
        node_file = data_dir.resolve() / f"{host.name}.xml"
        content = test_node_xml(
            host.name, host.vcpus, host.memory_gib * 1024, STORAGE_POOL, host.pool_gib, volumes
        )
        if not node_file.exists() or node_file.read_text() != content:
            node_file.write_text(content)
        hypervisor, _ = Hypervisor.objects.update_or_create(
            name=host.name,
            defaults={"uri": f"test://{node_file}"},
            create_defaults={
                "uri": f"test://{node_file}",
                "region": region,
                "storage_pool": STORAGE_POOL,
                "cpu_overcommit": CPU_OVERCOMMIT,
            },
        )
        inventory.sync_hypervisor(hypervisor.pk)
