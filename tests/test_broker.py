"""The embedded broker: a consumer polling while a producer writes sees whole messages only."""

import threading
from pathlib import Path

from kombu import Connection, Queue

from cloud import broker


def test_concurrent_put_and_get_never_yield_partial_messages(tmp_path: Path) -> None:
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(tmp_path / "control"),
        "polling_interval": 0,
    }
    queue = Queue("q", routing_key="q")
    total = 300
    received: list[dict[str, int]] = []

    def produce() -> None:
        with Connection(f"{broker.SCHEME}://", transport_options=options) as conn:
            producer = conn.Producer(serializer="json")
            for i in range(total):
                producer.publish({"n": i, "pad": "x" * 4096}, routing_key="q", declare=[queue])

    writer = threading.Thread(target=produce)
    with Connection(f"{broker.SCHEME}://", transport_options=options) as conn:
        # kombu's stubs say str, but SimpleQueue takes a Queue as well.
        simple = conn.SimpleQueue(queue)  # type: ignore[arg-type]
        writer.start()
        while len(received) < total:
            message = simple.get(timeout=10)
            received.append(message.payload)
            message.ack()
        simple.close()
    writer.join()
    assert sorted(m["n"] for m in received) == list(range(total))
    assert not list(folder.glob(".partial-*"))
