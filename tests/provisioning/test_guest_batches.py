"""A guest's reports sent together: applied in order in one transaction, for what one
report costs; the first refused stops the batch, those before it stay applied."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from observability.models import Event
from provisioning import guest_seed, pipeline
from provisioning.models import Node, NodeStep
from provisioning.states import NodeStatus
from tests.provisioning.test_guest import PHONE_HOME, booted, report, walk

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["booted"]  # the fixture, imported for the tests here


def send(node: Node, *moves: tuple[str, str]) -> Any:
    reports = [{"step": step, "state": state} for step, state in moves]
    payload = {"token": guest_seed.node_token(node), "reports": reports}
    return Client().post(PHONE_HOME, payload, content_type="application/json")


@contextmanager
def counted() -> Iterator[dict[str, Any]]:
    """The queries run and the transactions committed meanwhile."""
    seen: dict[str, Any] = {"commits": 0}
    wrapper = connections["default"]
    real = wrapper.commit

    def commit() -> None:
        seen["commits"] += 1
        real()

    wrapper.commit = commit  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as queries:
            yield seen
    finally:
        del wrapper.commit
    # SQLite's BEGIN IMMEDIATE and COMMIT show as queries; they are the transaction.
    sql = [q["sql"] for q in queries.captured_queries]
    seen["queries"] = [q for q in sql if not q.startswith(("BEGIN", "COMMIT"))]


def times(node: Node) -> dict[str, tuple[bool, bool]]:
    rows = NodeStep.objects.filter(node=node)
    return {r.step: (r.started_at is not None, r.finished_at is not None) for r in rows}


def step_events(node: Node) -> list[str]:
    return list(
        Event.objects.filter(node=node.name)
        .exclude(step="")
        .order_by("id")
        .values_list("message", flat=True)
    )


def test_a_batch_applies_in_order_in_one_transaction_of_three_queries(booted) -> None:
    server = booted[0]
    connection.ensure_connection()
    assert report(server, "cloud_init", "started").status_code == 200
    with counted() as seen:
        reply = send(server, ("cloud_init", "done"), ("fetch_deps", "started"))
    assert reply.status_code == 200, reply.content
    assert reply.json() == {
        "node": server.name,
        "step": "fetch_deps",
        "state": "started",
        "reports": 2,
    }
    # The read that locks the cluster, the node and its steps; one write to the step
    # times and one to the event log (which counts the cluster's progress).
    assert len(seen["queries"]) == 3, seen["queries"]
    assert not any("SAVEPOINT" in sql for sql in seen["queries"])
    # Nor does it load (and decrypt) the cluster's CA keys and join token.
    assert not any("_encrypted" in sql for sql in seen["queries"])
    assert seen["commits"] == 1
    assert times(server)["cloud_init"] == (True, True)
    assert times(server)["fetch_deps"] == (True, False)
    assert Node.objects.with_step().get(pk=server.pk).step == "fetch_deps"
    assert step_events(server)[-2:] == [
        f"{server.name}: Cloud-init done in 0.0 s",
        f"{server.name}: Fetch dependencies started",
    ]


def test_a_lone_report_costs_the_same_three_queries(booted) -> None:
    server = booted[0]
    connection.ensure_connection()
    with counted() as seen:
        assert report(server, "cloud_init", "started").status_code == 200
    assert len(seen["queries"]) == 3 and seen["commits"] == 1


def test_a_repeated_batch_changes_nothing_and_writes_nothing(booted) -> None:
    server = booted[0]
    connection.ensure_connection()
    batch = (("cloud_init", "started"), ("cloud_init", "done"))
    assert send(server, *batch).status_code == 200
    before = step_events(server)
    with counted() as seen:
        assert send(server, *batch).status_code == 200
    assert step_events(server) == before
    assert len(seen["queries"]) == 1  # the locking read only


def test_the_whole_launch_in_one_batch_makes_the_node_running(booted) -> None:
    server = booted[0]
    moves = [
        (s, st) for s in ("cloud_init", "fetch_deps", "launch_k3s") for st in ("started", "done")
    ]
    assert send(server, *moves).status_code == 200
    server.refresh_from_db()
    assert server.status == NodeStatus.RUNNING
    progress = list(
        Event.objects.filter(node=server.name, step__in=[s for s, _ in moves])
        .order_by("id")
        .values_list("progress", flat=True)
    )
    # Each event's own figure: the workers' six of the cluster's fifteen steps were done,
    # and each done report adds one.
    assert progress == [40, 47, 47, 53, 53, 60]
    assert progress[-1] == pipeline.progress(server.cluster)


def test_a_refused_report_stops_the_batch_and_keeps_what_came_before(booted) -> None:
    server, agent = booted[0], booted[1]
    batch = (("cloud_init", "started"), ("cloud_init", "done"), ("fetch_deps", "started"))
    assert send(agent, *batch).status_code == 200
    waiting = send(agent, ("fetch_deps", "done"), ("launch_k3s", "started"))
    assert waiting.status_code == 409 and waiting.json()["code"] == "not_ready"
    assert times(agent)["fetch_deps"] == (True, True)  # kept
    assert times(agent)["launch_k3s"] == (False, False)
    walk(server, "cloud_init", "fetch_deps", "launch_k3s")
    again = send(agent, ("fetch_deps", "done"), ("launch_k3s", "started"))  # the same batch
    assert again.status_code == 200
    assert times(agent)["launch_k3s"] == (True, False)
    assert [m for m in step_events(agent) if "Fetch dependencies done" in m] != []
    assert len([m for m in step_events(agent) if "Fetch dependencies done" in m]) == 1


def test_a_report_out_of_order_in_a_batch_is_400_after_the_ones_before(booted) -> None:
    server = booted[0]
    reply = send(server, ("cloud_init", "started"), ("fetch_deps", "started"))
    assert reply.status_code == 400 and reply.json()["code"] == "illegal_report"
    assert "fetch_deps cannot start before cloud_init is done" in str(reply.json())
    assert times(server)["cloud_init"] == (True, False)


def test_a_failed_report_in_a_batch_fails_the_node(booted) -> None:
    server = booted[0]
    reply = send(
        server, ("cloud_init", "started"), ("cloud_init", "failed"), ("fetch_deps", "started")
    )
    assert reply.status_code == 200
    server.refresh_from_db()
    assert server.status == NodeStatus.FAILED and server.error_code == "cloud_init_failed"
    assert times(server)["fetch_deps"] == (False, False)  # nothing after the failure


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"step": "cloud_init", "state": "started", "reports": [{"step": "x", "state": "done"}]},
            "reports",
        ),
        ({}, "step"),
        ({"reports": []}, "reports"),
        ({"reports": [{"step": "cloud_init", "state": "started"}] * 11}, "reports"),
        ({"reports": [{"step": "cloud_init", "state": "maybe"}]}, "reports"),
    ],
)
def test_a_malformed_batch_is_400_naming_the_field(
    booted, body: dict[str, Any], field: str
) -> None:
    payload = {"token": guest_seed.node_token(booted[0]), **body}
    reply = Client().post(PHONE_HOME, payload, content_type="application/json")
    assert reply.status_code == 400
    assert field in reply.json()
    assert NodeStep.objects.filter(started_at__isnull=False, step="cloud_init").count() == 0
