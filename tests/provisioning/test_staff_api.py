"""The staff hypervisor API: inventory list, cordon and uncordon, hidden from non-staff."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from pytest_django import DjangoAssertNumQueries
from rest_framework.test import APIClient

from portal.models import AuditEntry, Organisation
from provisioning import inventory
from provisioning.models import Hypervisor, HypervisorState
from tests.provisioning import inventory_fixtures
from tests.provisioning.inventory_fixtures import MakeHost

# Fixtures, used by name.
region = inventory_fixtures.region
make_host = inventory_fixtures.make_host

pytestmark = pytest.mark.django_db

LIST = "/api/v1/staff/hypervisors"


@pytest.fixture
def staff_api(staff: User) -> APIClient:
    client = APIClient()
    client.force_login(staff)
    return client


@pytest.fixture
def synced(make_host: MakeHost) -> Hypervisor:
    host = make_host("hv-a", vcpus=8, memory_mib=16384, vcpus_allocated=3)
    inventory.sync_hypervisor(host.pk)
    return Hypervisor.objects.get(pk=host.pk)


def test_list_fields(staff_api: APIClient, synced: Hypervisor) -> None:
    response = staff_api.get(LIST)

    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["uuid"] == str(synced.uuid)
    assert item["synced_at"]
    assert {k: v for k, v in item.items() if k not in ("uuid", "synced_at")} == {
        "name": "hv-a",
        "region": "lon1",
        "state": "active",
        "vcpus_total": 8,
        "vcpus_allocated": 3,
        "vcpus_capacity": 32,
        "memory_mib_total": 16384,
        "memory_mib_allocated": 0,
        "memory_mib_capacity": 16384,
        "cpu_overcommit": 4.0,
        "memory_overcommit": 1.0,
        "domain_count": 0,
        "sync_failures": 0,
        "last_error": "",
        # The test driver reports no KVM/QEMU type: blanks stay, the domain default shows.
        "virt_type": "",
        "cpu_mode": "",
        "cpu_model": "",
        "machine_type": "",
        "virtualisation": {
            "virt_type": "kvm",
            "cpu_mode": "host-model",
            "cpu_model": "",
            "machine_type": "",
        },
        "agent_seen_at": None,
        "agent_silent": True,
        "draining_since": None,
        "drain": None,
    }
    assert "uri" not in item and "credentials_encrypted" not in item


@pytest.mark.parametrize(
    "method, path",
    [("get", LIST), ("post", f"{LIST}/hv-a/cordon"), ("post", f"{LIST}/hv-a/uncordon")],
)
def test_hidden_from_non_staff(
    synced: Hypervisor,
    alice: User,
    acme: Organisation,
    api_for: Callable[[User, Organisation], APIClient],
    method: str,
    path: str,
) -> None:
    assert getattr(APIClient(), method)(path).status_code == 401
    assert getattr(api_for(alice, acme), method)(path).status_code == 404
    assert Hypervisor.objects.get(pk=synced.pk).state == HypervisorState.ACTIVE


def test_cordon_and_uncordon_are_audited_and_idempotent(
    staff: User, staff_api: APIClient, synced: Hypervisor
) -> None:
    response = staff_api.post(f"{LIST}/hv-a/cordon")
    assert response.status_code == 200
    assert response.json()["state"] == "cordoned"
    assert Hypervisor.objects.get(pk=synced.pk).state == HypervisorState.CORDONED

    again = staff_api.post(f"{LIST}/hv-a/cordon")
    assert (again.status_code, again.json()["state"]) == (200, "cordoned")

    response = staff_api.post(f"{LIST}/hv-a/uncordon")
    assert (response.status_code, response.json()["state"]) == (200, "active")

    entries = AuditEntry.objects.filter(target_id=str(synced.uuid)).order_by("id")
    assert [(e.action, e.actor) for e in entries] == [
        ("hypervisor.cordon", staff),
        ("hypervisor.uncordon", staff),
    ]


@pytest.mark.parametrize("action", ["cordon", "uncordon"])
@pytest.mark.parametrize("state", [HypervisorState.OFFLINE, HypervisorState.MAINTENANCE])
def test_offline_or_maintenance_host_is_a_conflict(
    staff_api: APIClient, make_host: MakeHost, action: str, state: str
) -> None:
    host = make_host("hv-a", state=state)

    response = staff_api.post(f"{LIST}/hv-a/{action}")

    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"hv-a is {state}:")
    assert Hypervisor.objects.get(pk=host.pk).state == state
    assert not AuditEntry.objects.exists()


def test_unknown_host_is_404(staff_api: APIClient, region: object) -> None:
    assert staff_api.post(f"{LIST}/nope/cordon").status_code == 404


def test_list_runs_a_constant_number_of_queries(
    staff_api: APIClient,
    make_host: MakeHost,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    for n in range(15):
        make_host(f"hv-{n}")
    # session, user, the page's count, hypervisors with regions
    with django_assert_max_num_queries(4):
        assert staff_api.get(LIST).json()["count"] == 15
