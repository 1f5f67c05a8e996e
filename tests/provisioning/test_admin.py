"""The supercluster in the Django admin: credentials write-only, state via actions only."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django import DjangoAssertNumQueries

from portal.models import AuditEntry
from provisioning.models import Hypervisor, HypervisorState, Region
from tests import second_factor
from tests.portal.at_rest import stored
from tests.provisioning import inventory_fixtures
from tests.provisioning.inventory_fixtures import MakeHost

# Fixtures, used by name.
region = inventory_fixtures.region
make_host = inventory_fixtures.make_host

pytestmark = pytest.mark.django_db

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-material\n"
CHANGELIST = "/admin/provisioning/hypervisor/"


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    second_factor.verified(
        client, User.objects.create_superuser("root", "root@example.com", "root-pass-1")
    )
    return client


def form(region: Region, **extra: object) -> dict[str, object]:
    return {
        "name": "hv-new",
        "region": region.pk,
        "uri": "qemu+ssh://root@hv-new.example/system",
        "storage_pool": "default",
        "cpu_overcommit": "4",
        "memory_overcommit": "1",
        **extra,
    }


def test_credentials_are_stored_encrypted_and_never_shown(
    admin_client: Client, region: Region
) -> None:
    response = admin_client.post(f"{CHANGELIST}add/", form(region, credentials=KEY))
    assert response.status_code == 302, response.content.decode()

    host = Hypervisor.objects.get(name="hv-new")
    assert "secret-material" not in stored(host, "credentials")
    assert host.credentials == KEY
    page = admin_client.get(f"{CHANGELIST}{host.pk}/change/").content.decode()
    assert "secret-material" not in page
    assert stored(host, "credentials") not in page

    # Saving without new credentials keeps the stored ones; clearing removes them.
    admin_client.post(f"{CHANGELIST}{host.pk}/change/", form(region, storage_pool="fast"))
    host.refresh_from_db()
    assert (host.storage_pool, host.credentials) == ("fast", KEY)
    admin_client.post(f"{CHANGELIST}{host.pk}/change/", form(region, clear_credentials="on"))
    host.refresh_from_db()
    assert host.credentials == stored(host, "credentials") == ""


def test_change_form_leaves_state_and_allocations_alone(
    admin_client: Client, make_host: MakeHost, region: Region
) -> None:
    host = make_host("hv-new", vcpus_allocated=7, memory_mib_allocated=4096)

    response = admin_client.post(
        f"{CHANGELIST}{host.pk}/change/",
        form(region, cpu_overcommit="2", state="offline", vcpus_allocated="0"),
    )

    assert response.status_code == 302
    host.refresh_from_db()
    assert host.cpu_overcommit == 2.0
    assert (host.state, host.vcpus_allocated, host.memory_mib_allocated) == ("active", 7, 4096)


def test_cordon_and_uncordon_actions(admin_client: Client, make_host: MakeHost) -> None:
    hosts = [make_host("hv-a"), make_host("hv-b", state=HypervisorState.OFFLINE)]
    selected = [h.pk for h in hosts]

    response = admin_client.post(
        CHANGELIST, {"action": "cordon", "_selected_action": selected}, follow=True
    )

    assert "hv-b is offline" in response.content.decode().lower()
    states = dict(Hypervisor.objects.values_list("name", "state"))
    assert states == {"hv-a": "cordoned", "hv-b": "offline"}
    admin_client.post(CHANGELIST, {"action": "uncordon", "_selected_action": selected})
    assert Hypervisor.objects.get(name="hv-a").state == "active"
    assert list(AuditEntry.objects.values_list("action", flat=True).order_by("id")) == [
        "hypervisor.cordon",
        "hypervisor.uncordon",
    ]


def test_hypervisor_list_runs_a_constant_number_of_queries(
    admin_client: Client,
    make_host: MakeHost,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    for n in range(15):
        make_host(f"hv-{n}", vcpus_allocated=n)
    with django_assert_max_num_queries(8):
        page = admin_client.get(CHANGELIST).content.decode()
    assert "14 / 0" in page  # allocated / capacity before the first sync


@pytest.mark.parametrize("model", ["cluster", "nodepool", "node", "nodestep"])
def test_tenant_objects_are_read_only(admin_client: Client, model: str) -> None:
    assert admin_client.get(f"/admin/provisioning/{model}/").status_code == 200
    assert admin_client.get(f"/admin/provisioning/{model}/add/").status_code == 403


@pytest.mark.parametrize("model", ["region", "hypervisor", "nodesize", "k3sversion", "baseimage"])
def test_catalogue_is_managed_in_the_admin(admin_client: Client, model: str) -> None:
    assert admin_client.get(f"/admin/provisioning/{model}/add/").status_code == 200
