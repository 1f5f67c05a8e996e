"""The staff hypervisor page: capacity bars, state badges, cordon/uncordon forms."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django import DjangoAssertNumQueries

from portal.models import AuditEntry
from provisioning import inventory
from provisioning.models import Hypervisor, HypervisorState
from tests.provisioning import inventory_fixtures
from tests.provisioning.inventory_fixtures import UNREACHABLE_URI, MakeHost

# Fixtures, used by name.
region = inventory_fixtures.region
make_host = inventory_fixtures.make_host

pytestmark = pytest.mark.django_db

PAGE = "/staff/hypervisors/"
BrowserFor = Callable[[User], Client]


def test_page_shows_capacity_state_and_sync(
    staff: User, browser_for: BrowserFor, make_host: MakeHost
) -> None:
    active = make_host("hv-a", vcpus=8, vcpus_allocated=6)
    inventory.sync_hypervisor(active.pk)
    make_host("hv-b", state=HypervisorState.CORDONED)
    down = make_host("hv-c", uri=UNREACHABLE_URI)
    for _ in range(3):
        inventory.sync_hypervisor(down.pk)

    page = browser_for(staff).get(PAGE).content.decode()

    assert '<span class="badge active">' in page
    assert '<span class="badge cordoned">' in page
    assert '<span class="badge offline">' in page
    assert '<meter min="0" max="32" value="6"' in page
    assert "6 / 32" in page
    assert "3 failed syncs: unreachable:" in page
    assert "never" in page  # hv-b was never synced
    assert 'value="cordon"' in page and 'value="uncordon"' in page


def test_forms_cordon_and_uncordon(
    staff: User, browser_for: BrowserFor, make_host: MakeHost
) -> None:
    host = make_host("hv-a")
    browser = browser_for(staff)

    response = browser.post(PAGE, {"name": "hv-a", "action": "cordon"}, follow=True)

    assert response.redirect_chain == [(PAGE, 302)]
    assert "hv-a is cordoned." in response.content.decode()
    assert Hypervisor.objects.get(pk=host.pk).state == HypervisorState.CORDONED
    browser.post(PAGE, {"name": "hv-a", "action": "uncordon"})
    assert Hypervisor.objects.get(pk=host.pk).state == HypervisorState.ACTIVE
    assert AuditEntry.objects.filter(actor=staff).count() == 2


def test_form_conflict_and_bad_input(
    staff: User, browser_for: BrowserFor, make_host: MakeHost
) -> None:
    make_host("hv-a", state=HypervisorState.OFFLINE)
    browser = browser_for(staff)

    response = browser.post(PAGE, {"name": "hv-a", "action": "cordon"}, follow=True)
    assert "hv-a is offline: only a host that is active can be cordoned." in (
        response.content.decode()
    )
    assert browser.post(PAGE, {"name": "hv-a", "action": "delete"}).status_code == 400
    assert browser.post(PAGE, {"name": "nope", "action": "cordon"}).status_code == 404
    assert Hypervisor.objects.get(name="hv-a").state == HypervisorState.OFFLINE


def test_hidden_from_non_staff(alice: User, browser_for: BrowserFor, make_host: MakeHost) -> None:
    host = make_host("hv-a")
    browser = browser_for(alice)
    assert browser.get(PAGE).status_code == 404
    assert browser.post(PAGE, {"name": "hv-a", "action": "cordon"}).status_code == 404
    assert Hypervisor.objects.get(pk=host.pk).state == HypervisorState.ACTIVE
    assert Client().get(PAGE).status_code == 302  # to the login page


def test_page_runs_a_constant_number_of_queries(
    staff: User,
    browser_for: BrowserFor,
    make_host: MakeHost,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    for n in range(15):
        make_host(f"hv-{n}")
    browser = browser_for(staff)
    with django_assert_max_num_queries(6):
        assert browser.get(PAGE).content.decode().count('class="badge active"') == 15
