"""Live push: latency from an event's commit to its JSON on websocket clients.

Starts uvicorn with the portal's ASGI app on throwaway data, creates one cluster over the
API, connects clients to /ws/clusters/<uuid>/events/ (bearer token, same-origin header),
and writes events from this process with observability.events.record inside
transaction.atomic(), stamping the moment of commit (the doorbell rings right after it).
  1. a few clients: p50/p95 from commit to JSON (goal p95 <= 100 ms with the Redis channel
     layer, <= 500 ms embedded, where consumers poll the event table);
  2. 1,000 watchers on the one ASGI process: p95 of the time an event takes to reach all
     of them (goal <= 250 ms), and the web process's memory per watcher.

Run: .venv/bin/python bench/live.py --mode services   (PostgreSQL + channels-redis)
     .venv/bin/python bench/live.py --mode embedded   (SQLite, polling)
"""

import argparse
import asyncio
import json
import random
import resource
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import _portal as portal
from _django import percentile
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

CONNECT_BATCH = 50  # handshakes in flight at once
ARRIVAL_TIMEOUT = 10.0  # seconds an event may take to reach every client


@dataclass
class Watchers:
    """Websocket clients of one cluster; when each event id reached each of them."""

    port: int
    token: str
    cluster: str
    after: int
    arrivals: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    sockets: list[ClientConnection] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)

    async def open(self, count: int) -> None:
        for start in range(0, count, CONNECT_BATCH):
            batch = min(CONNECT_BATCH, count - start)
            self.sockets += await asyncio.gather(*(self.connect() for _ in range(batch)))
        self.readers += [asyncio.create_task(self.read(ws)) for ws in self.sockets]

    async def connect(self) -> ClientConnection:
        origin = f"http://127.0.0.1:{self.port}"
        ws = await connect(
            f"ws://127.0.0.1:{self.port}/ws/clusters/{self.cluster}/events/?after={self.after}",
            origin=Origin(origin),
            additional_headers={"Authorization": f"Bearer {self.token}"},
            ping_interval=None,
            open_timeout=60,
        )
        first = json.loads(await ws.recv())
        assert first.get("type") == "status", first  # the consumer accepted us
        return ws

    async def read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                now = time.time()
                payload = json.loads(message)
                if "id" in payload:
                    self.arrivals[payload["id"]].append(now)
        except ConnectionClosed as closed:  # reported, and no longer waited for
            why = f"{closed.rcvd.code} {closed.rcvd.reason}".strip() if closed.rcvd else "no close"
            self.dropped[why] += 1

    @property
    def live(self) -> int:
        return len(self.sockets) - self.dropped.total()

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


class Writer:
    """Writes events the way the pipeline does, in this process, on one thread."""

    def __init__(self, cluster_uuid: str) -> None:
        self.cluster_uuid = cluster_uuid
        self.thread = ThreadPoolExecutor(1)

    def write(self, n: int) -> tuple[int, float]:
        from django.db import transaction

        from observability import events
        from provisioning.models import Cluster

        cluster = Cluster.objects.get(uuid=self.cluster_uuid)
        committed: list[float] = []
        with transaction.atomic():
            # Registered before record()'s doorbell, so it runs first, right at commit.
            transaction.on_commit(lambda: committed.append(time.time()))
            event = events.record(cluster, f"bench event {n}", progress=n % 100)
        return event.id, committed[0]

    async def send(self, n: int) -> tuple[int, float]:
        return await asyncio.get_running_loop().run_in_executor(self.thread, self.write, n)

    async def close(self) -> None:
        from django.db import connections

        # The thread's own connection, or the scratch database could not be dropped.
        await asyncio.get_running_loop().run_in_executor(self.thread, connections.close_all)
        self.thread.shutdown()


async def measure(
    writer: Writer, watchers: Watchers, events: int
) -> tuple[list[float], list[float]]:
    """Write `events` one after another; latencies per delivery, and per event to all."""
    each, to_all = [], []
    for n in range(events):
        await asyncio.sleep(random.uniform(0, 0.1))  # random phase against any polling
        event_id, committed = await writer.send(n)
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        while len(watchers.arrivals[event_id]) < watchers.live and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        got = watchers.arrivals[event_id]
        if len(got) < watchers.live:
            raise SystemExit(f"event {event_id} reached {len(got)} of {watchers.live} clients")
        each += [(t - committed) * 1000 for t in got]
        to_all.append((max(got) - committed) * 1000)
    return each, to_all


async def wait_for_all(watchers: Watchers, event_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(watchers.arrivals[event_id]) < watchers.live and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 0.5):.1f} ms, p95 {percentile(values, 0.95):.1f} ms"


async def bench(port: int, token: str, web_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    body = {"name": "live", "region": "demo", "pools": [{"name": "p", "size": "small", "count": 1}]}
    cluster = portal.api(port, token, "POST", "/api/v1/clusters", body)["id"]
    writer = Writer(cluster)
    after, _ = await writer.send(0)
    warm = Watchers(port, token, cluster, after)  # loads the consumer code before measuring
    await warm.open(1)
    await warm.close()

    few = Watchers(port, token, cluster, after)
    await few.open(args.clients)
    latency, _ = await measure(writer, few, args.events)
    last_id = max(few.arrivals)
    await few.close()

    rss_before = portal.rss_kib(web_pid)
    many = Watchers(port, token, cluster, after)
    started = time.monotonic()
    await many.open(args.watchers)
    # Each watcher first receives the history after `after`; measure once that is done.
    await wait_for_all(many, last_id, timeout=120)
    connected = time.monotonic() - started
    rss_after = portal.rss_kib(web_pid)
    _, to_all = await measure(writer, many, args.fanout_events)
    await many.close()
    await writer.close()
    return {
        "latency": latency,
        "to_all": to_all,
        "connected": connected,
        "per_watcher_kib": (rss_after - rss_before) / args.watchers,
        "rss": (rss_before, rss_after),
        "dropped": few.dropped + many.dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=portal.MODES, required=True)
    parser.add_argument("--clients", type=int, default=5, help="clients for the latency part")
    parser.add_argument("--events", type=int, default=200, help="events for the latency part")
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--fanout-events", type=int, default=40, help="events to all watchers")
    args = parser.parse_args()
    raise_open_files(4 * args.watchers + 256)  # inherited by the web server
    port = portal.free_port()
    with portal.portal_environment(args.mode, port):
        token = portal.prepare()
        web = portal.web(port)
        try:
            portal.wait_until(lambda: portal.serving(port), "the web server")
            import django

            django.setup()  # same environment as the web server: its database, its layer
            results = asyncio.run(bench(port, token, web.pid, args))
        except SystemExit:
            print(portal.log_tail("web"))
            raise
        finally:
            portal.stop(web)

    push = "channels-redis doorbell" if args.mode == "services" else "polling the event table"
    goal = 100 if args.mode == "services" else 500
    before, after = results["rss"]
    print(f"mode: {args.mode} ({push})")
    print(
        f"commit -> JSON, {args.clients} clients x {args.events} events: "
        f"{ms(results['latency'])} (goal p95 <= {goal} ms)"
    )
    caught_up = results["connected"]
    print(f"{args.watchers} watchers connected and sent their history in {caught_up:.1f} s")
    print(
        f"commit -> JSON on all {args.watchers} watchers, {args.fanout_events} events: "
        f"{ms(results['to_all'])}, max {max(results['to_all']):.1f} ms (goal p95 <= 250 ms)"
    )
    dropped = results["dropped"]
    print(f"connections the server dropped: {dropped.total()} {dict(dropped) if dropped else ''}")
    print(
        f"web process RSS {before / 1024:.0f} MiB -> {after / 1024:.0f} MiB: "
        f"{results['per_watcher_kib']:.1f} KiB per watcher"
    )


if __name__ == "__main__":
    main()
