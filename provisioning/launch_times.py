"""The public launch-time page (/status/launch-times): how long launches took over the
last 7 days, overall and per step, as p50 and p95. Nothing of any tenant is on it: only
durations and counts. Computed at most once a minute (the cache), as anyone may ask."""

from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from provisioning import steps
from provisioning.models import Cluster, NodeStep

WINDOW = timedelta(days=7)
CACHE_KEY, CACHE_SECONDS = "status:launch-times", 60


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest rank: the smallest value at or above `fraction` of them."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def _row(label: str, durations: list[float]) -> dict[str, Any]:
    return {
        "label": label,
        "count": len(durations),
        "p50": percentile(durations, 0.5),
        "p95": percentile(durations, 0.95),
    }


def figures(window: timedelta = WINDOW) -> dict[str, Any]:
    """Create-to-running and each step over the last `window`, as p50 and p95."""
    since = timezone.now() - window
    launches = [
        (ready - created).total_seconds()
        for created, ready in Cluster.objects.filter(ready_at__gte=since).values_list(
            "created_at", "ready_at"
        )
        if ready is not None
    ]
    by_step: dict[str, list[float]] = {spec.name: [] for spec in steps.TABLE}
    finished = NodeStep.objects.filter(
        finished_at__gte=since, started_at__isnull=False, failed=False
    ).values_list("step", "started_at", "finished_at")
    for step, started, done in finished:
        if started is not None and done is not None:
            by_step.setdefault(step, []).append((done - started).total_seconds())
    return {
        "overall": _row("Create to running", launches),
        "steps": [_row(spec.label, by_step[spec.name]) for spec in steps.TABLE],
        "days": window.days,
    }


def launch_times(request: HttpRequest) -> HttpResponse:
    shown = cache.get(CACHE_KEY)
    if shown is None:
        shown = figures()
        cache.set(CACHE_KEY, shown, CACHE_SECONDS)
    return render(request, "provisioning/launch_times.html", shown)
