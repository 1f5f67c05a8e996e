"""Hypervisors on libvirt's test driver, each described by its own node file in tmp_path.

Imported explicitly by the inventory test modules (a new file path is a new URI, hence a
fresh test-driver state per test).
"""

from collections.abc import Callable
from pathlib import Path

import pytest

from provisioning.drivers.xml import test_node_xml
from provisioning.models import Hypervisor, HypervisorState, Region

UNREACHABLE_URI = "qemu+tcp://127.0.0.1:1/system"

MakeHost = Callable[..., Hypervisor]


@pytest.fixture
def region(db: None) -> Region:
    return Region.objects.create(slug="lon1", name="London 1")


@pytest.fixture
def make_host(tmp_path: Path, region: Region) -> MakeHost:
    """make_host(name, vcpus=8, memory_mib=16384, state=active, **fields) -> Hypervisor.

    The URI points at the host's own node file unless `fields` gives another."""

    def make(
        name: str,
        vcpus: int = 8,
        memory_mib: int = 16384,
        state: str = HypervisorState.ACTIVE,
        **fields: object,
    ) -> Hypervisor:
        node = tmp_path / f"{name}.xml"
        node.write_text(test_node_xml(name, vcpus, memory_mib, "default", 200, ("base.qcow2",)))
        fields = {"uri": f"test://{node}", **fields}
        return Hypervisor.objects.create(name=name, region=region, state=state, **fields)

    return make
