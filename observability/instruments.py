"""The portal's in-process instruments (prometheus-client). Multi-process safe: the
settings point PROMETHEUS_MULTIPROC_DIR at a folder under DATA_DIR before anything imports
prometheus-client, every process (web workers, Celery workers) writes its samples there,
and a scrape (provisioning.metrics) adds them up. `manage.py serve` empties the folder at
start, so a restart begins from zero and no dead process's gauge lingers."""

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
