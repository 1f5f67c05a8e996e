"""Live cluster events over websockets, read from the event table (never lost, never twice).

A consumer sends the events after `?after=N`, then follows new ones: pushed by a doorbell
on the channel layer (channels-redis), or, without a cross-process layer (embedded mode),
by polling the table. Either way it reads from the database after the last id it sent,
so a reconnecting client resumes with no gap and no duplicate.
"""

import asyncio
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import AnonymousUser

from observability.events import group_name
from observability.models import Event
from portal import access
from portal.models import ApiToken
from provisioning.models import Cluster

POLL_SECONDS = 0.2
KEEPALIVE_SECONDS = 20.0
BATCH = 500

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def visible_cluster(scope: dict[str, Any], cluster_id: str) -> Cluster | None:
    user = scope.get("user") or AnonymousUser()
    token = scope.get("auth")
    organisation = token.organisation if isinstance(token, ApiToken) else None
    return (
        access.for_user(Cluster.objects.all(), user, organisation).filter(uuid=cluster_id).first()
    )


class ClusterEventsConsumer(AsyncJsonWebsocketConsumer):
    cluster: Cluster
    last_id: int

    async def connect(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.lock = asyncio.Lock()
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        cluster_id = self.scope["url_route"]["kwargs"]["cluster_id"]
        cluster = await database_sync_to_async(visible_cluster)(self.scope, str(cluster_id))
        if cluster is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.cluster = cluster
        self.last_id = self.after()
        await self.opening()
        if self.channel_layer is not None:
            await self.channel_layer.group_add(group_name(cluster.uuid), self.channel_name)
        else:
            self.tasks.append(asyncio.create_task(self.poll()))
        self.tasks.append(asyncio.create_task(self.keepalive()))

    async def opening(self) -> None:
        await self.send_json(await self.snapshot())
        await self.flush()

    def after(self) -> int:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            return max(0, int(query.get("after", ["0"])[0]))
        except ValueError:
            return 0

    async def disconnect(self, code: int) -> None:
        for task in self.tasks:
            task.cancel()
        if self.channel_layer is not None and hasattr(self, "cluster"):
            await self.channel_layer.group_discard(group_name(self.cluster.uuid), self.channel_name)

    async def event_ready(self, message: dict[str, Any]) -> None:
        """The doorbell: something was committed; read what is new."""
        await self.flush()

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            await self.flush()

    async def keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            await self.send_json({"type": "keepalive"})

    async def flush(self) -> None:
        async with self.lock:  # doorbells and polls may overlap: one reader at a time
            while True:
                batch = await self.read_after(self.last_id)
                for payload in batch:
                    await self.send_json(payload)
                    self.last_id = payload["id"]
                if len(batch) < BATCH:
                    return

    @database_sync_to_async
    def read_after(self, last_id: int) -> list[dict[str, Any]]:
        from provisioning.serializers import EventOutput

        events = Event.objects.filter(cluster=self.cluster, id__gt=last_id).order_by("id")[:BATCH]
        return list(EventOutput(events, many=True).data)

    @database_sync_to_async
    def snapshot(self) -> dict[str, Any]:
        cluster = Cluster.objects.get(pk=self.cluster.pk)
        last = Event.objects.filter(cluster=cluster).order_by("-id").first()
        return {
            "type": "status",
            "cluster": str(cluster.uuid),
            "status": cluster.status,
            "progress": last.progress if last else 0,
        }


class ClusterLiveConsumer(ClusterEventsConsumer):
    """The browser's cluster page: the same stream, sent as htmx out-of-band fragments."""

    async def opening(self) -> None:
        await self.flush(always=True)

    async def flush(self, always: bool = False) -> None:
        async with self.lock:
            newest = await self.newest_id()
            if newest <= self.last_id and not always:
                return
            self.last_id = newest
            await self.send(text_data=await self.fragments())

    @database_sync_to_async
    def newest_id(self) -> int:
        return (
            Event.objects.filter(cluster=self.cluster)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
            or 0
        )

    @database_sync_to_async
    def fragments(self) -> str:
        from provisioning import cluster_page

        cluster = cluster_page.with_nodes(Cluster.objects.filter(pk=self.cluster.pk)).get()
        return cluster_page.live_fragments(cluster)
