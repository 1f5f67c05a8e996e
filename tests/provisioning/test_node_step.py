"""A node's current step, read from its step rows: in SQL (NodeQuerySet.with_step, the
list, the staff pages, the reaper) and over rows already read (the cluster detail)."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from provisioning.models import Node, NodeStep
from provisioning.models.clusters import current_step
from tests import second_factor
from tests.provisioning.test_guest import booted

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["booted"]  # the fixture, imported for the tests here


def both_ways(node: Node) -> tuple[str, str]:
    rows = NodeStep.objects.filter(node=node)
    return Node.objects.with_step().get(pk=node.pk).step, current_step(rows)


@pytest.mark.parametrize(
    ("started", "failed", "expected"),
    [
        ((), (), ""),  # nothing started yet
        (("import_image", "start_vm"), (), "start_vm"),  # the last one started
        (("import_image", "start_vm"), ("cloud_init",), "cloud_init"),  # failed unstarted
        (("import_image", "start_vm", "cloud_init"), ("start_vm",), "start_vm"),
    ],
)
def test_the_current_step_is_the_failed_one_else_the_last_started(
    booted: list[Node], started: tuple[str, ...], failed: tuple[str, ...], expected: str
) -> None:
    node = booted[0]
    rows = NodeStep.objects.filter(node=node)
    rows.update(started_at=None, finished_at=None, failed=False)
    rows.filter(step__in=started).update(started_at=timezone.now())
    rows.filter(step__in=failed).update(failed=True)
    assert both_ways(node) == (expected, expected)


def test_the_list_and_the_detail_show_the_same_steps(
    booted: list[Node], alice, acme, api_for
) -> None:
    client = api_for(alice, acme)
    NodeStep.objects.filter(node=booted[1], step="cloud_init").update(failed=True)
    detail = client.get(f"/api/v1/clusters/{booted[0].cluster.uuid}").json()
    listed = client.get("/api/v1/clusters").json()["results"][0]
    shown = {n["name"]: n["step"] for n in detail["nodes"]}
    assert shown == {n["name"]: n["step"] for n in listed["nodes"]}
    assert shown == {
        booted[0].name: "start_vm",
        booted[1].name: "cloud_init",
        booted[2].name: "start_vm",
    }


def test_the_admin_lists_each_nodes_step(booted: list[Node]) -> None:
    client = Client()
    root = User.objects.create_superuser("root", "root@example.com", "root-pass-1")
    second_factor.verified(client, root)
    page = client.get("/admin/provisioning/node/").content.decode()
    assert page.count('<td class="field-step">start_vm</td>') == len(booted)
