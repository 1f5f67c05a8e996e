"""k3sc.watch in-process against a small websocket server: a dropped stream is reopened
after the last event seen, and the end is what the cluster says."""

import contextlib
import io
import json
import threading
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from k3sc import watch


def event(id_: int, node: str | None, step: str | None, state: str, progress: int) -> dict:
    return {"id": id_, "created_at": "2030-01-01T00:00:00Z", "node": node, "step": step,
            "state": state, "message": f"event {id_}", "progress": progress}  # fmt: skip


LOG = [
    event(1, "web-0", "import_image", "started", 0),
    event(2, "web-0", "import_image", "done", 50),
    event(3, None, None, "info", 100),
]


class Portal:
    """The first stream drops after one event; the cluster is running from the second on,
    whose stream sends the rest of the log."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.headers: list[tuple[str | None, str | None]] = []

    def handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        self.paths.append(connection.request.path)
        headers = connection.request.headers
        self.headers.append((headers.get("Authorization"), headers.get("Origin")))
        after = int(connection.request.path.rpartition("after=")[2])
        connection.send(json.dumps({"type": "status", "status": "provisioning", "progress": 0}))
        if len(self.paths) == 1:
            connection.send(json.dumps(LOG[0]))
            connection.close(code=1011)  # as a restarting server would
            return
        for item in LOG:
            if item["id"] > after:
                connection.send(json.dumps(item))
        with contextlib.suppress(ConnectionClosed):
            connection.recv()  # until the client leaves


class Client:
    """The REST side of the same portal."""

    token = "k3sp_test"

    def __init__(self, url: str, portal: Portal) -> None:
        self.url, self.portal = url, portal

    def get(self, path: str) -> dict[str, Any]:
        status = "running" if len(self.portal.paths) > 1 else "provisioning"
        return {"id": "c1", "name": "web", "status": status, "nodes": [], "eta_seconds": None}

    def pages(self, path: str, after: int = 0, **params: Any) -> list[dict[str, Any]]:
        return [item for item in LOG if item["id"] > after]


def test_a_dropped_stream_resumes_after_the_last_event_and_ends_when_running() -> None:
    portal = Portal()
    with serve(portal.handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        client = Client(f"http://127.0.0.1:{port}", portal)
        out = io.StringIO()
        final = watch.follow(client, client.get(""), live=False, stream=out)  # type: ignore[arg-type]
        server.shutdown()
    assert final["status"] == "running"
    assert portal.paths == ["/ws/clusters/c1/events/?after=0", "/ws/clusters/c1/events/?after=1"]
    assert portal.headers[0] == ("Bearer k3sp_test", f"http://127.0.0.1:{port}")
    lines = [line for line in out.getvalue().splitlines() if "event" in line]
    assert [line.split()[-1] for line in lines] == ["1", "2", "3"]  # each once, in order
    assert "[import_image]" in lines[0] and "done" in lines[1]
