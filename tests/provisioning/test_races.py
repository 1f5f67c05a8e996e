"""Races between pipeline steps that only PostgreSQL's concurrency shows."""

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone

from observability.models import Event
from provisioning import guest_seed, pipeline, step_ledger
from provisioning.models import Cluster, Node
from provisioning.states import NodeStatus, transition

pytestmark = pytest.mark.django_db(transaction=True)
GOOD = {
    "name": "web",
    "region": "demo",
    "pools": [{"name": "workers", "size": "small", "count": 3}],
}


def test_last_two_nodes_ready_at_once_leave_the_cluster_running(
    demo_cloud, alice, acme, api_for, settings
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL; CI runs it); SQLite serialises them")
    settings.GUEST_SIMULATOR = False
    api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json")
    Node.objects.filter(is_server=True).update(status=NodeStatus.RUNNING)
    agents = list(Node.objects.filter(is_server=False))
    both_moved, both_looked = threading.Barrier(len(agents)), threading.Barrier(len(agents))
    errors: list[BaseException] = []

    def ready(node: Node) -> None:
        try:
            with transaction.atomic():
                # Each agent becomes Ready in its own transaction; both look at the cluster
                # before either commits, as two guests reporting at the same moment do.
                transition(
                    node, [NodeStatus.PROVISIONING], NodeStatus.RUNNING, ready_at=timezone.now()
                )
                both_moved.wait(timeout=10)
                pipeline.refresh_cluster(node.cluster)
                # Neither commits before both looked, unless looking waits for the other
                # (the row lock): then this times out, once, and the first one commits.
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_looked.wait(timeout=1)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ready, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert Cluster.objects.get().status == "running"


@pytest.fixture
def waiting_server(demo_cloud, alice, acme, api_for, settings) -> Node:
    """The server node of a launch whose guests have said nothing yet (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL; CI runs it); SQLite serialises them")
    settings.GUEST_SIMULATOR = False
    api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json")
    return Node.objects.get(is_server=True)


def held_after(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, thread: str
) -> threading.Event:
    """Patch `owner.name` so that in the thread called `thread` it returns only 0.5 s after
    it ran, its transaction still open; the event is set when it has run."""
    ran = threading.Event()
    real = getattr(owner, name)

    def held(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if threading.current_thread().name == thread:
            ran.set()
            threading.Event().wait(0.5)  # the other writer arrives meanwhile
        return result

    monkeypatch.setattr(owner, name, held)
    return ran


def report_while(
    work: Callable[[], Any],
    thread: str,
    ran: threading.Event,
    node: Node,
    move: tuple[str, str] = ("cloud_init", "started"),
) -> Any:
    """Run `work` in a thread called `thread`; once `ran` is set (held_after), the node's
    guest reports `move`. The reply; what `work` raised fails the test."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    worker = threading.Thread(target=run, name=thread)
    worker.start()
    ran.wait(timeout=10)
    reply = report_of(node, *move)
    worker.join()
    assert not errors, errors
    return reply


def report_of(node: Node, step: str, state: str) -> Any:
    payload = {"token": guest_seed.node_token(node), "step": step, "state": state}
    return Client().post("/api/v1/guest/phone-home", payload, content_type="application/json")


def test_a_node_failing_while_its_guest_reports_never_deadlocks(
    waiting_server: Node, monkeypatch
) -> None:
    """The reaper fails a node while its guest's report arrives: both take the cluster's
    row before the node's (pipeline.lock_cluster), so one waits for the other instead of
    each holding what the other needs (a deadlock PostgreSQL would break with an error)."""
    server = waiting_server
    failing_holds_the_node = held_after(monkeypatch, pipeline, "transition", "reaper")

    def reap() -> None:
        with transaction.atomic():
            pipeline.fail_node(server, "cloud_init", "step_timeout", "No progress.")

    reply = report_while(reap, "reaper", failing_holds_the_node, server)
    assert reply.status_code == 400 and reply.json()["code"] == "illegal_report"  # it failed
    assert Node.objects.get(pk=server.pk).status == NodeStatus.FAILED


def test_the_same_report_twice_at_once_writes_its_event_once(
    waiting_server: Node, monkeypatch
) -> None:
    """A guest's retry arrives while its first try still holds the cluster's lock: the
    second reads what the first committed, so the step's event is written once."""
    server = waiting_server
    first_moved = held_after(monkeypatch, step_ledger, "move", "first")
    replies: list[int] = []

    def first() -> None:
        replies.append(report_of(server, "cloud_init", "started").status_code)

    again = report_while(first, "first", first_moved, server)
    assert replies == [200] and again.status_code == 200
    started = Event.objects.filter(node=server.name, step="cloud_init", state="started")
    assert started.count() == 1


def test_a_report_that_waited_counts_the_progress_committed_meanwhile(
    waiting_server: Node, monkeypatch
) -> None:
    """Two guests finish a step at once: the second waits for the first's lock, and its
    event's progress counts the step the first one finished (a count in the read that
    waited would not; the event insert counts after the wait)."""
    server = waiting_server
    agent = Node.objects.filter(is_server=False).first()
    assert agent is not None
    for node in (server, agent):
        assert report_of(node, "cloud_init", "started").status_code == 200
    first_moved = held_after(monkeypatch, step_ledger, "move", "first")
    replies: list[int] = []

    def first() -> None:
        replies.append(report_of(server, "cloud_init", "done").status_code)

    again = report_while(first, "first", first_moved, agent, ("cloud_init", "done"))
    assert replies == [200] and again.status_code == 200
    done = Event.objects.filter(step="cloud_init", state="done").order_by("id")
    # The workers' steps make six of the cluster's fifteen; then the server's, the agent's.
    assert [(e.node, e.progress) for e in done] == [(server.name, 47), (agent.name, 53)]
