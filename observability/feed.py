"""One reader, and one doorbell subscription, per watched cluster in each ASGI process.

A thousand browsers watching one launch must not cost a thousand channel-layer messages,
queries and serializations per event: the watchers of a cluster share a feed. It alone
joins the cluster's group on the channel layer, wakes its watchers when the doorbell
rings, reads each new event from the database once, serialized once, and hands every
watcher the slice after the last id it sent. History older than the feed (a client
resuming with ?after=N) is read for that client alone. Reads go by id, and
events.record() makes a cluster's ids commit in order, so "after the newest id read"
never skips one.
"""

import asyncio
from collections.abc import Callable
from time import monotonic
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from observability.models import Event
from observability.serializers import EventOutput

BATCH = 500
KEEP = 2000  # recent events kept per cluster; older ones are read on demand
# channels-redis forgets group members after a day; a long watch renews its membership.
RENEW_SECONDS = 3600.0

Wake = Callable[[int], None]


def read_after(cluster_pk: int, last_id: int) -> list[dict[str, Any]]:
    events = Event.objects.filter(cluster_id=cluster_pk, id__gt=last_id).order_by("id")[:BATCH]
    return list(EventOutput(events, many=True).data)


def newest_id(cluster_pk: int) -> int:
    return (
        Event.objects.filter(cluster_id=cluster_pk)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
        or 0
    )


class ClusterFeed:
    def __init__(self, cluster_pk: int, group: str) -> None:
        self.cluster_pk = cluster_pk
        self.group = group
        self.lock = asyncio.Lock()
        self.events: list[dict[str, Any]] = []
        self.floor: int | None = None  # every event after `floor` up to `newest` is cached
        self.newest = 0
        self.read_at = 0.0
        self.watchers: set[Wake] = set()
        self.listener: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        """Start following the doorbell (once); returns when subscribed."""
        layer = get_channel_layer()
        if layer is None or self.listener is not None:
            return
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        self.listener = asyncio.create_task(self._ring_watchers(layer, channel))

    async def _ring_watchers(self, layer: Any, channel: str) -> None:
        try:
            while True:
                try:
                    message = await asyncio.wait_for(layer.receive(channel), RENEW_SECONDS)
                except TimeoutError:
                    await layer.group_add(self.group, channel)
                    continue
                for wake in list(self.watchers):
                    wake(message["event_id"])
        finally:
            await asyncio.shield(layer.group_discard(self.group, channel))

    async def after(
        self, last_id: int, *, doorbell: int | None = None, max_age: float = 0.0
    ) -> list[dict[str, Any]]:
        """Events after `last_id` (a batch at most). A doorbell names an event that exists;
        without one the feed reads again when its last read is older than `max_age`."""
        async with self.lock:
            if self.floor is None:
                self.floor = self.newest = await database_sync_to_async(newest_id)(self.cluster_pk)
                self.read_at = monotonic()
            if last_id < self.floor:
                return await database_sync_to_async(read_after)(self.cluster_pk, last_id)
            stale = (
                doorbell > self.newest
                if doorbell is not None
                else monotonic() - self.read_at >= max_age
            )
            if stale:
                await self._refresh()
            return [event for event in self.events if event["id"] > last_id][:BATCH]

    async def _refresh(self) -> None:
        while True:
            fresh = await database_sync_to_async(read_after)(self.cluster_pk, self.newest)
            self.read_at = monotonic()
            if fresh:
                self.events.extend(fresh)
                self.newest = fresh[-1]["id"]
            if len(self.events) > KEEP:
                dropped = self.events[: len(self.events) - KEEP]
                self.events = self.events[len(dropped) :]
                self.floor = dropped[-1]["id"]
            if len(fresh) < BATCH:
                return


_feeds: dict[int, ClusterFeed] = {}


async def join(cluster_pk: int, group: str, wake: Wake) -> ClusterFeed:
    """Watch a cluster: `wake(event_id)` is called when its doorbell rings."""
    feed = _feeds.setdefault(cluster_pk, ClusterFeed(cluster_pk, group))
    feed.watchers.add(wake)
    await feed.listen()
    return feed


def leave(feed: ClusterFeed, wake: Wake) -> None:
    feed.watchers.discard(wake)
    if not feed.watchers:
        _feeds.pop(feed.cluster_pk, None)
        if feed.listener is not None:
            feed.listener.cancel()
