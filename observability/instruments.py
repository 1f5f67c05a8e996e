"""The portal's in-process instruments (prometheus-client). Multi-process safe: the
settings point PROMETHEUS_MULTIPROC_DIR at a folder under DATA_DIR before anything imports
prometheus-client, every process (web workers, Celery workers) writes its samples there,
and a scrape (provisioning.metrics) adds them up. `manage.py serve` empties the folder at
start, so a restart begins from zero and no dead process's gauge lingers."""

import time
from typing import Any

from celery.signals import before_task_publish, task_prerun
from prometheus_client import Gauge, Histogram

# Seconds: most requests take milliseconds, a kubeconfig (a key pair) tens of them.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_SECONDS = Histogram(
    "k3s_portal_http_request_seconds",
    "Time to answer an HTTP request, by route pattern, method and status class.",
    ["route", "method", "status"],
    buckets=HTTP_BUCKETS,
)
WEBSOCKETS = Gauge(
    "k3s_portal_websocket_connections",
    "Open websocket connections (live cluster pages and event streams).",
    multiprocess_mode="livesum",
)
TASK_WAIT_SECONDS = Histogram(
    "k3s_portal_task_wait_seconds",
    "Time a Celery task waited between being sent and starting, by queue.",
    ["queue"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
SENT_AT = "portal_sent_at"  # a message header: when the task was sent (wall clock)


@before_task_publish.connect
def _stamp(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(SENT_AT, time.time())


@task_prerun.connect
def _waited(task: Any = None, **_: Any) -> None:
    request: Any = getattr(task, "request", None)
    sent = getattr(request, SENT_AT, None)
    if sent is None:
        return  # eager (tests, embedded calls in-process) or sent by an older portal
    queue = (request.delivery_info or {}).get("routing_key") or "celery"
    TASK_WAIT_SECONDS.labels(queue).observe(max(0.0, time.time() - float(sent)))
