"""The shared per-cluster feed: one database read per new event, whatever the watchers."""

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from observability import events, feed
from portal.models import Organisation
from provisioning.models import Cluster, Region
from tests.provisioning.factories import make_cluster

pytestmark = pytest.mark.django_db(transaction=True)
record = database_sync_to_async(events.record)


def ignore(event_id: int) -> None:
    """A watcher that does not care about the doorbell."""


@pytest.fixture
def cluster(acme: Organisation) -> Cluster:
    return make_cluster(acme, Region.objects.create(slug="r1", name="r1"))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = feed.read_after

    def counted(cluster_pk: int, last_id: int) -> list[dict[str, Any]]:
        calls.append(last_id)
        return real(cluster_pk, last_id)

    monkeypatch.setattr(feed, "read_after", counted)
    return calls


async def test_a_hundred_watchers_cost_one_read_per_doorbell(cluster, reads) -> None:
    shared = await feed.join(cluster.pk, "cluster.test", ignore)
    start = await shared.after(0, max_age=0)
    assert start == []
    reads.clear()
    event = await record(cluster, "one")
    got = await asyncio.gather(*(shared.after(0, doorbell=event.id) for _ in range(100)))
    assert all([e["id"] for e in batch] == [event.id] for batch in got)
    assert len(reads) == 1
    feed.leave(shared, ignore)
    assert cluster.pk not in feed._feeds


async def test_history_before_the_feed_is_read_for_that_watcher(cluster, reads) -> None:
    old = [await record(cluster, f"old {i}") for i in range(3)]
    shared = await feed.join(cluster.pk, "cluster.test", ignore)
    assert await shared.after(old[-1].id, max_age=0) == []
    history = await shared.after(0)
    assert [e["id"] for e in history] == [e.id for e in old]
    new = await record(cluster, "new")
    assert [e["id"] for e in await shared.after(old[-1].id, doorbell=new.id)] == [new.id]
    feed.leave(shared, ignore)


async def test_polling_reads_at_most_once_per_interval(cluster, reads) -> None:
    shared = await feed.join(cluster.pk, "cluster.test", ignore)
    await shared.after(0, max_age=0)
    reads.clear()
    await record(cluster, "x")
    first = await shared.after(0, max_age=0)
    for _ in range(50):
        assert await shared.after(0, max_age=60) == first
    assert len(reads) == 1
    feed.leave(shared, ignore)


async def test_watchers_share_one_subscription_and_all_wake(cluster, settings) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from channels.layers import get_channel_layer

    group = events.group_name(cluster.uuid)
    rung: list[list[int]] = [[] for _ in range(50)]
    wakers = [rung[i].append for i in range(50)]
    feeds = [await feed.join(cluster.pk, group, wake) for wake in wakers]
    assert len({id(f) for f in feeds}) == 1
    layer = get_channel_layer()
    assert len(layer.groups[group]) == 1
    event = await record(cluster, "ding")
    for _ in range(100):
        if all(rung):
            break
        await asyncio.sleep(0.01)
    assert all(r == [event.id] for r in rung)
    for wake in wakers:
        feed.leave(feeds[0], wake)
    await asyncio.sleep(0.05)
    assert cluster.pk not in feed._feeds
    assert not layer.groups.get(group)
