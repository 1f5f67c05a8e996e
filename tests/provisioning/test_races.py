"""Races between pipeline steps that only PostgreSQL's concurrency shows."""

import contextlib
import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from provisioning import pipeline
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
