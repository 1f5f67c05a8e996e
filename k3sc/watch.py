"""Following a launch live: the cluster's event websocket, drawn as a table or as lines.

The stream (`/ws/clusters/<id>/events/?after=N`) sends the cluster's status, then every
event after N, then new ones; a dropped socket is reopened after the last id seen, so
nothing is missed or shown twice. Whether the launch is over is always asked of the
cluster itself (GET), never guessed from the events.
"""

import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO
from urllib.parse import urlsplit

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from k3sc.client import ApiError, Client, NetworkError
from k3sc.output import console

# The portal's five steps per node, in order (its API names); a step it adds later gets
# a column of its own when its first event arrives.
STEPS = ["import_image", "start_vm", "cloud_init", "fetch_deps", "launch_k3s"]
SETTLED = {"running", "degraded", "failed", "deleting", "deleted"}
CLOSE_REASONS = {4401: "not_authenticated", 4404: "not_found"}
RECONNECT_FOR = 60.0  # seconds of failed reconnects before giving up
ETA_EVERY = 2.0  # seconds between two asks for the estimate


def when(stamp: str | None) -> datetime:
    return datetime.fromisoformat(stamp) if stamp else datetime.now(UTC)


@dataclass
class Cell:
    state: str
    started: datetime
    finished: datetime | None = None

    def seconds(self) -> float:
        end = self.finished or datetime.now(UTC)
        return max(0.0, (end - self.started).total_seconds())


@dataclass
class Launch:
    """What the events so far say about each node's steps, and the cluster's progress."""

    name: str
    nodes: list[str]
    steps: list[str] = field(default_factory=lambda: list(STEPS))
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    progress: int = 0
    status: str = "pending"
    last_id: int = 0
    eta_seconds: float | None = None
    eta_asked: float = 0.0
    began: float = field(default_factory=time.monotonic)

    def apply(self, event: dict[str, Any]) -> None:
        self.last_id = max(self.last_id, int(event["id"]))
        self.progress = int(event.get("progress") or self.progress)
        node, step, state = event.get("node"), event.get("step"), event.get("state")
        if not (node and step):
            return
        if node not in self.nodes:
            self.nodes.append(node)
        if step not in self.steps:
            self.steps.append(step)
        at = when(event.get("created_at"))
        cell = self.cells.get((node, step))
        if state == "started" or cell is None:
            # A retried node starts its steps over.
            self.cells[(node, step)] = Cell(str(state), at, at if state != "started" else None)
            if state == "started":
                for later in self.steps[self.steps.index(step) + 1 :]:
                    self.cells.pop((node, later), None)
        else:
            cell.state, cell.finished = str(state), at

    def eta_left(self) -> float | None:
        if self.eta_seconds is None:
            return None
        return max(0.0, self.eta_seconds - (time.monotonic() - self.eta_asked))


class View(Protocol):
    def status(self, launch: Launch) -> None: ...
    def event(self, launch: Launch, event: dict[str, Any]) -> None: ...
    def refresh(self, launch: Launch) -> None: ...
    def close(self) -> None: ...


class Lines:
    """One line per event, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def status(self, launch: Launch) -> None:
        print(
            f"cluster {launch.name}: {launch.status} ({launch.progress}%)",
            file=self.stream,
            flush=True,
        )

    def event(self, launch: Launch, event: dict[str, Any]) -> None:
        stamp = when(event.get("created_at")).astimezone().strftime("%H:%M:%S")
        step = f"[{event['step']}] " if event.get("step") else ""
        print(
            f"{stamp} {event.get('progress', 0):>3}% {event.get('state', ''):<7} "
            f"{step}{event.get('message', '')}",
            file=self.stream,
            flush=True,
        )

    def refresh(self, launch: Launch) -> None:
        pass

    def close(self) -> None:
        pass


class LiveTable:
    """Nodes by steps, each cell a spinner, a check or a cross with its seconds; under it
    the overall progress and the estimate."""

    def __init__(self) -> None:
        self.spinners: dict[tuple[str, str], Spinner] = {}
        self.live = Live(console=console, refresh_per_second=8)
        self.live.start()

    def cell(self, key: tuple[str, str], cell: Cell | None) -> Any:
        if cell is None:
            return Text("·", style="dim")
        took = f"{cell.seconds():.1f}s"
        if cell.state == "done":
            return Text.assemble(("✓ ", "green"), took)
        if cell.state == "failed":
            return Text.assemble(("✗ ", "bold red"), took)
        spinner = self.spinners.setdefault(key, Spinner("dots", style="cyan"))
        spinner.update(text=took)
        return spinner

    def render(self, launch: Launch) -> Group:
        grid = Table(title=f"{launch.name}: {launch.status}", title_justify="left")
        grid.add_column("node")
        for step in launch.steps:
            grid.add_column(step)
        for node in launch.nodes:
            cells = [self.cell((node, s), launch.cells.get((node, s))) for s in launch.steps]
            grid.add_row(node, *cells)
        left = launch.eta_left()
        elapsed = time.monotonic() - launch.began
        summary = f" {launch.progress:>3}%  elapsed {elapsed:.0f}s"
        if left is not None:
            summary += f"  ETA {left:.0f}s"
        bar = Table.grid()
        bar.add_row(ProgressBar(total=100, completed=launch.progress, width=40), summary)
        return Group(grid, bar)

    def status(self, launch: Launch) -> None:
        self.refresh(launch)

    def event(self, launch: Launch, event: dict[str, Any]) -> None:
        self.refresh(launch)

    def refresh(self, launch: Launch) -> None:
        self.live.update(self.render(launch), refresh=True)

    def close(self) -> None:
        self.live.stop()


def stream_url(client: Client, cluster_id: str, after: int) -> str:
    parts = urlsplit(client.url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path}/ws/clusters/{cluster_id}/events/?after={after}"


def last_event_id(client: Client, cluster_id: str) -> int:
    """The newest event's id, to follow only what comes after a scale or a retry."""
    newest = 0
    for event in client.pages(f"clusters/{cluster_id}/events", limit=1000):
        newest = max(newest, int(event["id"]))
    return newest


class Follower:
    def __init__(self, client: Client, cluster: dict[str, Any], view: View, after: int) -> None:
        self.client, self.view = client, view
        self.id = str(cluster["id"])
        self.launch = Launch(cluster["name"], [n["name"] for n in cluster.get("nodes", [])])
        self.launch.last_id = after
        self.cluster = cluster
        self.failing_since: float | None = None  # when reconnecting began to fail

    def check(self) -> bool:
        """Ask the cluster how it is (and its estimate); True once it has settled."""
        self.cluster = self.client.get(f"clusters/{self.id}")
        self.launch.status = self.cluster["status"]
        self.launch.eta_seconds = self.cluster.get("eta_seconds")
        self.launch.eta_asked = time.monotonic()
        rollout = self.cluster.get("upgrade") or {}
        upgrading = bool(rollout.get("to")) and not rollout.get("error")
        return self.launch.status in SETTLED and not upgrading

    def catch_up(self) -> None:
        """The events the stream had not brought yet when the cluster settled."""
        for event in self.client.pages(f"clusters/{self.id}/events", after=self.launch.last_id):
            self.launch.apply(event)
            self.view.event(self.launch, event)
        self.view.refresh(self.launch)

    def handle(self, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind == "keepalive":
            return False
        if kind == "status":
            self.launch.status = message.get("status", self.launch.status)
            self.launch.progress = int(message.get("progress") or 0)
            self.view.status(self.launch)
            return self.check()
        self.launch.apply(message)
        self.view.event(self.launch, message)
        settles = not message.get("node") or message.get("state") == "failed"
        stale = time.monotonic() - self.launch.eta_asked > ETA_EVERY
        return self.check() if settles or stale else False

    def session(self) -> bool:
        """One websocket connection; True when the cluster settled during it."""
        headers = {"Authorization": f"Bearer {self.client.token}"}
        origin = Origin("{0.scheme}://{0.netloc}".format(urlsplit(self.client.url)))
        url = stream_url(self.client, self.id, self.launch.last_id)
        # The portal checks the Origin against its allowed hosts: send its own.
        with connect(url, additional_headers=headers, origin=origin, proxy=None) as socket:
            self.failing_since = None
            while True:
                try:
                    raw = socket.recv(timeout=0.25)
                except TimeoutError:
                    self.view.refresh(self.launch)
                    continue
                if self.handle(json.loads(raw)):
                    return True

    def run(self) -> dict[str, Any]:
        try:
            while True:
                try:
                    if self.session():
                        self.catch_up()
                        return self.cluster
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
                    if code in CLOSE_REASONS:
                        raise ApiError(
                            code, CLOSE_REASONS[code], "The stream refused.", {}
                        ) from None
                except InvalidStatus as refused:
                    status = refused.response.status_code
                    raise ApiError(
                        status, f"http_{status}", "The portal refused the stream.", {}
                    ) from None
                except (OSError, InvalidHandshake) as error:
                    self.failing_since = self.failing_since or time.monotonic()
                    if time.monotonic() - self.failing_since > RECONNECT_FOR:
                        raise NetworkError(f"lost the event stream: {error}") from error
                time.sleep(0.5)  # then resume after the last event seen
                with contextlib.suppress(NetworkError):
                    if self.check():
                        self.catch_up()
                        return self.cluster
        finally:
            self.view.close()


def follow(
    client: Client, cluster: dict[str, Any], live: bool, stream: TextIO, after: int = 0
) -> dict[str, Any]:
    """Follow the cluster's events after `after` until it settles; returns it as it then is."""
    view: View = LiveTable() if live else Lines(stream)
    return Follower(client, cluster, view, after).run()


def failures(cluster: dict[str, Any]) -> list[str]:
    """What went wrong, node by node, for the error output."""
    lines = []
    for node in cluster.get("nodes", []):
        error = node.get("error")
        if node.get("status") == "failed" and error:
            lines.append(
                f"error: {error['code']}: node {node['name']} failed at "
                f"{node.get('step') or 'launch'}: {error['message']}"
            )
    return lines or [f"error: cluster_{cluster['status']}: {cluster.get('status_reason') or ''}"]
