"""A fresh libvirt test-driver hypervisor per test, described by a node file in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.drivers.libvirt import LibvirtDriver
from provisioning.drivers.xml import test_node_xml

BASE_VOLUME = "ubuntu-k3s.qcow2"


@pytest.fixture
def node_uri(tmp_path: Path) -> str:
    # A new file path means a new URI, hence a new connection and a fresh test-driver state.
    node = tmp_path / "hv-1.xml"
    node.write_text(test_node_xml("hv-1", 8, 16384, "default", 200, (BASE_VOLUME,)))
    return f"test://{node}"


@pytest.fixture
def driver(node_uri: str) -> LibvirtDriver:
    return LibvirtDriver(node_uri)
