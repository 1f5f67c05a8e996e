"""The customer's cluster pages: scoping, the form and its pre-flight, actions, query budget."""

from typing import Any

import pytest
from django.urls import reverse

from provisioning.models import Cluster

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]

FORM = {
    "name": "web",
    "region": "demo",
    "pool_name": "workers",
    "pool_size": "small",
    "pool_count": "3",
}


def created(client: Any, **fields: str) -> Cluster:
    response = client.post(reverse("provisioning:cluster_create"), {**FORM, **fields})
    assert response.status_code == 302, response.content.decode()[:500]
    return Cluster.objects.get(name=fields.get("name", "web"))


def test_create_lands_on_the_cluster_page(demo_cloud, alice, browser_for) -> None:
    client = browser_for(alice)
    cluster = created(client)
    page = client.get(reverse("provisioning:cluster_detail", args=[cluster.uuid]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Ready in" in html and "the seed's mark: 90 s" in html
    assert html.count('data-state="done"') == 15
    assert 'aria-valuenow="100"' in html
    assert f'ws-connect="/ws/clusters/{cluster.uuid}/live/' in html


def test_form_errors_are_shown_in_place_and_nothing_is_created(
    demo_cloud, alice, browser_for
) -> None:
    response = browser_for(alice).post(
        reverse("provisioning:cluster_create"), {**FORM, "name": "Bad Name!", "pool_count": "0"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="name-error"' in html and "Use lowercase letters" in html
    assert "count: A pool has 1 to 50 nodes." in html
    assert not Cluster.objects.exists()


def test_preflight_shows_quota_placement_and_price(demo_cloud, alice, browser_for) -> None:
    response = browser_for(alice).post(reverse("provisioning:cluster_preflight"), FORM)
    html = response.content.decode()
    assert "3 nodes on 3 hosts in demo" in html
    assert "nodes 3/40" in html
    assert "$30.00" in html
    big = browser_for(alice).post(
        reverse("provisioning:cluster_preflight"), {**FORM, "pool_count": "50"}
    )
    assert "Over quota: nodes 50 of 40" in big.content.decode()


def test_other_tenants_get_404_viewers_cannot_delete(
    demo_cloud, alice, bob, charlie, browser_for
) -> None:
    cluster = created(browser_for(alice))
    detail = reverse("provisioning:cluster_detail", args=[cluster.uuid])
    delete = reverse("provisioning:cluster_delete", args=[cluster.uuid])
    assert browser_for(bob).get(detail).status_code == 404
    assert browser_for(bob).post(delete, {"confirm_name": "web"}).status_code == 404
    assert browser_for(charlie).get(detail).status_code == 200
    assert "Delete this cluster" not in browser_for(charlie).get(detail).content.decode()
    assert browser_for(charlie).post(delete, {"confirm_name": "web"}).status_code == 403
    assert Cluster.objects.get(pk=cluster.pk).status == "running"


def test_delete_needs_the_typed_name(demo_cloud, alice, browser_for) -> None:
    client = browser_for(alice)
    cluster = created(client)
    delete = reverse("provisioning:cluster_delete", args=[cluster.uuid])
    client.post(delete, {"confirm_name": "wrong"})
    assert Cluster.objects.get(pk=cluster.pk).status == "running"
    client.post(delete, {"confirm_name": "web"})
    assert Cluster.objects.get(pk=cluster.pk).status == "deleted"


def test_scale_and_polling_fragment(demo_cloud, alice, browser_for) -> None:
    client = browser_for(alice)
    cluster = created(client)
    client.post(
        reverse("provisioning:cluster_scale", args=[cluster.uuid, "workers"]), {"count": "4"}
    )
    fragment = client.get(
        reverse("provisioning:cluster_detail", args=[cluster.uuid]), HTTP_HX_REQUEST="true"
    )
    html = fragment.content.decode()
    assert html.count('hx-swap-oob="true"') == 5  # badge, progress, nodes, health, timeline
    assert html.count('data-state="done"') == 20


def test_list_runs_constant_queries(
    demo_cloud, alice, browser_for, django_assert_max_num_queries
) -> None:
    client = browser_for(alice)
    created(client)
    with django_assert_max_num_queries(30) as one:
        client.get(reverse("provisioning:cluster_list"))
    baseline = len(one.captured_queries)
    for name in ("b", "c", "d"):
        created(client, name=name)
    with django_assert_max_num_queries(baseline):
        html = client.get(reverse("provisioning:cluster_list")).content.decode()
    assert html.count("3/3 running") == 4


def test_over_quota_is_a_form_error_not_a_crash(demo_cloud, alice, acme, browser_for) -> None:
    acme.quota.nodes = 2
    acme.quota.save()
    response = browser_for(alice).post(reverse("provisioning:cluster_create"), FORM)
    assert response.status_code == 400
    assert "Over your organisation&#x27;s quota: nodes 3 of 2." in response.content.decode()
    assert not Cluster.objects.exists()


def test_a_cluster_scaling_up_says_scaling_and_a_deleted_one_says_deleted(
    demo_cloud, alice, browser_for, settings
) -> None:
    client = browser_for(alice)
    cluster = created(client)  # running: the simulator played every guest step
    detail = reverse("provisioning:cluster_detail", args=[cluster.uuid])
    settings.GUEST_SIMULATOR = False  # the new node's guest stays silent
    client.post(
        reverse("provisioning:cluster_scale", args=[cluster.uuid, "workers"]), {"count": "4"}
    )
    assert Cluster.objects.get(pk=cluster.pk).status == "provisioning"
    html = client.get(detail).content.decode()
    assert "<h2>Scaling</h2>" in html and "3 of 4 nodes ready" in html
    assert ">scaling</span>" in html and "Launch progress" not in html
    assert '<li class="msg transient success">Scaling workers to 4.</li>' in html  # until live

    client.post(
        reverse("provisioning:cluster_delete", args=[cluster.uuid]), {"confirm_name": "web"}
    )
    assert Cluster.objects.get(pk=cluster.pk).status == "deleted"
    html = client.get(detail).content.decode()
    assert "<h2>Deleted</h2>" in html and ">deleted</span>" in html
    assert "Download kubeconfig" not in html and 'role="progressbar"' not in html
    assert html.index("Cluster deleted") < html.index("Cluster requested")  # newest first
