"""A burst of node starts (or deletions) on one host asks for one inventory sync, a
moment later, not one per node."""

from typing import Any

import pytest
from django.core.cache import cache

from provisioning import enqueue

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_burst_on_one_host_asks_for_one_sync_a_moment_later(monkeypatch) -> None:
    cache.clear()
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        enqueue, "send", lambda name, *args, **options: sent.append((name, args, options))
    )
    for _ in range(5):
        enqueue.sync_hypervisor_soon(7)
    enqueue.sync_hypervisor_soon(8)
    countdown = {"countdown": enqueue.SYNC_COALESCE_SECONDS}
    assert sent == [
        (enqueue.SYNC_HYPERVISOR, (7,), countdown),
        (enqueue.SYNC_HYPERVISOR, (8,), countdown),
    ]
    cache.delete("sync-soon:7")  # the wait is over: the next change asks again
    enqueue.sync_hypervisor_soon(7)
    assert sent[-1] == (enqueue.SYNC_HYPERVISOR, (7,), countdown)
