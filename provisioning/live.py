"""A cluster's live push: the websocket consumers of the API stream and the cluster page.

Both follow the cluster's events through observability's generic stream; this module
adds what only provisioning knows: who may watch which cluster, and what a client sees
first (the status and progress, or the page's rendered fragments).
"""

import asyncio
from time import monotonic
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser

from observability import feed
from observability.consumers import EventStreamConsumer
from observability.models import Event
from portal import access
from portal.models import ApiToken
from provisioning import cluster_page
from provisioning.models import Cluster, NodeHeartbeat

# Heartbeats are no events (they would flood the timeline): the page looks for a new one
# this often, and the watchers of a cluster in one process share the lookup.
HEALTH_POLL_SECONDS = 5.0
_newest_beat: dict[int, tuple[float, int]] = {}


def newest_heartbeat(cluster_pk: int) -> int:
    checked = _newest_beat.get(cluster_pk)
    if checked is not None and monotonic() - checked[0] < HEALTH_POLL_SECONDS / 2:
        return checked[1]
    beats = NodeHeartbeat.objects.filter(node__cluster_id=cluster_pk).order_by("-id")
    newest = beats.values_list("id", flat=True).first() or 0
    _newest_beat[cluster_pk] = (monotonic(), newest)
    return newest


def visible_cluster(scope: dict[str, Any], cluster_id: str) -> Cluster | None:
    user = scope.get("user") or AnonymousUser()
    token = scope.get("auth")
    organisation = token.organisation if isinstance(token, ApiToken) else None
    clusters = access.for_user(Cluster.objects.all(), user, organisation=organisation)
    return clusters.filter(uuid=cluster_id).first()


class ClusterEventsConsumer(EventStreamConsumer):
    """The API's stream: the cluster's status first, then every event as JSON."""

    def find_cluster(self, cluster_id: str) -> tuple[int, object] | None:
        cluster = visible_cluster(self.scope, cluster_id)
        return (cluster.pk, cluster.uuid) if cluster is not None else None

    async def greet(self) -> None:
        await self.send_json(await self.snapshot())

    @database_sync_to_async
    def snapshot(self) -> dict[str, Any]:
        cluster = Cluster.objects.get(pk=self.cluster_pk)
        last = Event.objects.filter(cluster=cluster).order_by("-id").first()
        return {
            "type": "status",
            "cluster": str(cluster.uuid),
            "status": cluster.status,
            "progress": last.progress if last else 0,
        }


class ClusterLiveConsumer(ClusterEventsConsumer):
    """The browser's cluster page: the same stream, sent as htmx out-of-band fragments."""

    async def greet(self) -> None:
        # The fragments show everything so far; only later events need a new render.
        self.last_id = await database_sync_to_async(feed.newest_id)(self.cluster_pk)
        self.last_beat = await database_sync_to_async(newest_heartbeat)(self.cluster_pk)
        await self.send(text_data=await self.fragments())
        self.tasks.append(asyncio.create_task(self.follow_health()))

    async def follow_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_POLL_SECONDS)
            beat = await database_sync_to_async(newest_heartbeat)(self.cluster_pk)
            if beat != self.last_beat:
                self.last_beat = beat
                await self.send(text_data=await self.health())

    async def flush(self, doorbell: int | None = None) -> None:
        batch = await self.new_events(doorbell)
        if batch:
            self.last_id = batch[-1]["id"]
            await self.send(text_data=await self.fragments())

    @database_sync_to_async
    def fragments(self) -> str:
        cluster = cluster_page.with_nodes(Cluster.objects.filter(pk=self.cluster_pk)).get()
        return cluster_page.live_fragments(cluster)

    @database_sync_to_async
    def health(self) -> str:
        cluster = cluster_page.with_nodes(Cluster.objects.filter(pk=self.cluster_pk)).get()
        return cluster_page.health_fragment(cluster)
