"""Live cluster events over websockets, read from the event table (never lost, never twice).

A consumer sends the events after `?after=N`, then follows new ones: pushed by a doorbell
on the channel layer (channels-redis), or, without a cross-process layer (embedded mode),
by polling the table. Either way it reads from the database after the last id it sent,
so a reconnecting client resumes with no gap and no duplicate.

This is the generic stream; the app that owns clusters says which cluster a scope may
watch and what a client is sent first (provisioning.live), so observability imports
nothing above it.
"""

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from observability import feed
from observability.events import group_name
from observability.instruments import WEBSOCKETS

POLL_SECONDS = 0.2
KEEPALIVE_SECONDS = 20.0

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


class EventStreamConsumer(AsyncJsonWebsocketConsumer):
    """The events of the cluster in the URL, for a user who may see it."""

    cluster_pk: int
    last_id: int

    def find_cluster(self, cluster_id: str) -> tuple[int, object] | None:
        """(pk, uuid) of the cluster if the scope's user may see it; runs in a thread."""
        raise NotImplementedError

    async def greet(self) -> None:
        """What a client is sent first, before the events."""
        raise NotImplementedError

    async def connect(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        user = self.scope.get("user")
        await self.accept()
        WEBSOCKETS.inc()
        self.counted = True
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        cluster_id = self.scope["url_route"]["kwargs"]["cluster_id"]
        found = await database_sync_to_async(self.find_cluster)(str(cluster_id))
        if found is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.cluster_pk, cluster_uuid = found
        self.last_id = self.after()
        self.bell = asyncio.Event()
        self.rung: int | None = None
        await self.greet()
        # Subscribe before reading: an event committed from here on rings the bell (or is
        # polled), and everything before it is in the read just below.
        self.feed = await feed.join(self.cluster_pk, group_name(cluster_uuid), self.wake)
        await self.flush()
        self.tasks += [asyncio.create_task(self.follow()), asyncio.create_task(self.keepalive())]

    def wake(self, event_id: int) -> None:
        """The feed heard the doorbell: event `event_id` was committed."""
        self.rung = max(self.rung or 0, event_id)
        self.bell.set()

    async def follow(self) -> None:
        # With a channel layer the doorbell wakes us; without one (embedded) we poll.
        timeout = None if self.channel_layer is not None else POLL_SECONDS
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.bell.wait(), timeout)
            self.bell.clear()
            rung, self.rung = self.rung, None
            await self.flush(doorbell=rung)

    def after(self) -> int:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            return max(0, int(query.get("after", ["0"])[0]))
        except ValueError:
            return 0

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            WEBSOCKETS.dec()
            self.counted = False
        for task in self.tasks:
            task.cancel()
        if hasattr(self, "feed"):
            feed.leave(self.feed, self.wake)

    async def keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            await self.send_json({"type": "keepalive"})

    async def new_events(self, doorbell: int | None) -> list[dict[str, Any]]:
        # Without a doorbell (polling) the shared feed reads at most every half interval.
        return await self.feed.after(self.last_id, doorbell=doorbell, max_age=POLL_SECONDS / 2)

    async def flush(self, doorbell: int | None = None) -> None:
        # Called by connect() and then only by follow(): one sender at a time.
        while True:
            batch = await self.new_events(doorbell)
            for payload in batch:
                await self.send_json(payload)
                self.last_id = payload["id"]
            if len(batch) < feed.BATCH:
                return
