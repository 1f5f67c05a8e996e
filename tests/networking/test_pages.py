"""The Networks and Firewalls pages: list, create, inline rule edits (htmx), delete."""

from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client

from networking.models import Firewall, Network
from portal.models import Organisation
from provisioning.models import Hypervisor, Region
from tests.networking.conftest import MakeCluster, default_firewall, owner

Browser = Callable[[User], Client]


def test_network_page_lists_and_creates(
    browser_for: Browser, alice: User, acme: Organisation, region: Region
) -> None:
    browser = browser_for(alice)
    page = browser.get("/networks/")
    assert page.status_code == 200 and b"No networks yet" in page.content
    bad = browser.post("/networks/", {"name": "web", "cidr": "10.0.0.9/24", "region": "eu-1"})
    assert bad.status_code == 200 and b"did you mean 10.0.0.0/24" in bad.content
    done = browser.post(
        "/networks/", {"name": "web", "cidr": "10.0.0.0/24", "region": "eu-1"}, follow=True
    )
    assert b"Network web created" in done.content
    assert b"10.0.0.1" in done.content  # the gateway column
    assert Network.objects.filter(organisation=acme, name="web").exists()


def test_deleting_a_network_in_use_explains_why(
    browser_for: Browser,
    alice: User,
    acme_net: Network,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
) -> None:
    make_cluster(acme_net, hypervisors[:1], name="shop")
    delete = f"/networks/{acme_net.uuid}/delete/"
    page = browser_for(alice).post(delete, {"confirm": "web"}, follow=True)
    assert b"Network web is used by: shop. Delete those clusters first." in page.content
    assert Network.objects.live().filter(pk=acme_net.pk).exists()


def test_deleting_a_network_needs_its_confirmation(
    browser_for: Browser, alice: User, acme_net: Network
) -> None:
    browser = browser_for(alice)
    delete = f"/networks/{acme_net.uuid}/delete/"
    page = browser.post(delete, follow=True).content.decode()
    assert "Confirm deleting web first." in page and "<summary>Delete</summary>" in page
    assert Network.objects.live().filter(pk=acme_net.pk).exists()
    browser.post(delete, {"confirm": "web"})
    assert not Network.objects.live().filter(pk=acme_net.pk).exists()


def test_firewall_rules_edit_inline(
    browser_for: Browser, alice: User, acme_net: Network, hypervisors: list[Hypervisor]
) -> None:
    browser = browser_for(alice)
    firewall = default_firewall(acme_net)
    page = browser.get("/firewalls/")
    assert b"web-fw" in page.content and b"Kubernetes API" in page.content
    form = browser.get(f"/firewalls/{firewall.uuid}/rules/?edit=1", HTTP_HX_REQUEST="true")
    assert b'name="cidr"' in form.content and b"Save rules" in form.content
    rows = {
        "direction": ["ingress", "ingress", "ingress", "egress", "ingress"],
        "protocol": ["all", "tcp", "icmp", "all", "tcp"],
        "ports": ["", "6443", "80", "", ""],
        "cidr": [acme_net.cidr, "0.0.0.0/0", "0.0.0.0/0", "0.0.0.0/0", ""],
        "label": ["", "", "", "", ""],
        "remove": ["3"],
    }
    invalid = browser.post(f"/firewalls/{firewall.uuid}/rules/", rows, HTTP_HX_REQUEST="true")
    assert b"Rule 2, ports: Ports apply only to tcp and udp." in invalid.content
    firewall.refresh_from_db()
    assert firewall.revision == 1
    rows["ports"][2] = ""
    saved = browser.post(f"/firewalls/{firewall.uuid}/rules/", rows, HTTP_HX_REQUEST="true")
    assert b"Revision 2." in saved.content and b"Edit rules" in saved.content
    firewall.refresh_from_db()
    assert [r["protocol"] for r in firewall.rules] == ["all", "tcp", "icmp"]  # egress removed


def test_firewall_create_and_delete(
    browser_for: Browser, alice: User, acme_net: Network, region: Region
) -> None:
    browser = browser_for(alice)
    browser.post("/firewalls/", {"name": "strict", "network": str(acme_net.uuid)})
    firewall = Firewall.objects.get(name="strict")
    assert firewall.rules and not firewall.is_default
    page = browser.post(f"/firewalls/{firewall.uuid}/delete/", follow=True)
    assert b"Firewall strict deleted." in page.content
    assert not Firewall.objects.filter(pk=firewall.pk).exists()


def test_viewer_sees_but_cannot_change(
    browser_for: Browser, charlie: User, acme_net: Network
) -> None:
    browser = browser_for(charlie)
    firewall = default_firewall(acme_net)
    page = browser.get("/firewalls/")
    assert b"web-fw" in page.content and b"Edit rules" not in page.content
    assert b"Create a network" not in browser.get("/networks/").content
    assert browser.get(f"/firewalls/{firewall.uuid}/rules/?edit=1").status_code == 403
    rules = {"direction": "ingress", "protocol": "all", "cidr": "0.0.0.0/0"}
    assert browser.post(f"/firewalls/{firewall.uuid}/rules/", rules).status_code == 403
    assert browser.post(f"/networks/{acme_net.uuid}/delete/").status_code == 403
    assert browser.post("/networks/", {"name": "x", "cidr": "10.0.0.0/24"}).status_code == 403


def test_another_organisation_gets_404(
    browser_for: Browser, bob: User, bobco: Organisation, acme_net: Network
) -> None:
    browser = browser_for(bob)
    firewall = default_firewall(acme_net)
    assert b"web-fw" not in browser.get("/firewalls/").content
    assert browser.get(f"/firewalls/{firewall.uuid}/rules/").status_code == 404
    assert browser.post(f"/firewalls/{firewall.uuid}/delete/").status_code == 404
    assert browser.post(f"/networks/{acme_net.uuid}/delete/").status_code == 404


def test_anonymous_is_sent_to_log_in(acme_net: Network) -> None:
    for url in ("/networks/", "/firewalls/"):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_pages_run_constant_queries(
    browser_for: Browser,
    alice: User,
    acme: Organisation,
    region: Region,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
    django_assert_max_num_queries,
) -> None:
    from networking import services

    browser = browser_for(alice)
    for i in range(4):
        network = services.create_network(owner(acme), acme, region, f"n{i}", "10.0.0.0/24")
        make_cluster(network, hypervisors)
    with django_assert_max_num_queries(14):
        assert browser.get("/networks/").status_code == 200
    with django_assert_max_num_queries(14):
        assert browser.get("/firewalls/").status_code == 200
