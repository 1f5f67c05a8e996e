"""Fixtures for clusters: the demo supercluster on libvirt's test driver, and launches."""

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from provisioning import demo, guest_sim
from provisioning.models import Hypervisor, HypervisorState, NodeSize, Region


@pytest.fixture
def demo_cloud(db: None, tmp_path: Path, settings: Any) -> Region:
    """Region demo with three test-driver hosts (fresh libvirt state per test), sizes, versions."""
    settings.GUEST_SIM_SCALE = 0
    settings.CLOUD_FAULTS = ""
    demo.seed(tmp_path)
    return Region.objects.get(slug="demo")


@pytest.fixture
def guest_over_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guest simulator posts through Django's test client instead of a socket:
    same URL, same view, no server process needed by eager tests."""
    client = Client()

    def post(payload: dict[str, Any], path: str = guest_sim.PHONE_HOME_PATH) -> guest_sim.Reply:
        response = client.post(path, payload, content_type="application/json")
        return guest_sim.Reply(response.status_code, response.content.decode())

    monkeypatch.setattr(guest_sim, "post", post)


MakeSizedHost = Callable[..., Hypervisor]


@pytest.fixture
def sized_host(db: None) -> MakeSizedHost:
    """Hosts with given totals and no libvirt behind them, for placement alone."""

    def make(
        name: str,
        vcpus: int,
        memory_mib: int,
        region: Region,
        state: str = HypervisorState.ACTIVE,
        **fields: object,
    ) -> Hypervisor:
        return Hypervisor.objects.create(
            name=name,
            region=region,
            uri=f"test:///nonexistent/{name}.xml",
            state=state,
            vcpus_total=vcpus,
            memory_mib_total=memory_mib,
            **{"cpu_overcommit": 1.0, **fields},
        )

    return make


@pytest.fixture
def small(db: None) -> NodeSize:
    return NodeSize.objects.get_or_create(
        slug="small",
        defaults={"vcpus": 1, "memory_mib": 2048, "disk_gib": 20, "monthly_price": Decimal(10)},
    )[0]


@pytest.fixture
def large(db: None) -> NodeSize:
    return NodeSize.objects.get_or_create(
        slug="large",
        defaults={"vcpus": 4, "memory_mib": 8192, "disk_gib": 80, "monthly_price": Decimal(40)},
    )[0]
