"""How long a launch still needs: medians of recent successful steps, per step and size."""

from collections import defaultdict
from datetime import datetime
from statistics import median

from django.utils import timezone

from provisioning import recently, steps
from provisioning.models import Cluster, NodeStep
from provisioning.states import NODE_LAUNCHING, NodeStatus

RECENT = 50  # finished steps per size and step to take the median of
DEFAULT_SECONDS = 10.0  # before any history exists


MEDIANS_SECONDS = 10.0


def step_medians(size_ids: set[int]) -> dict[tuple[int, str], float]:
    """Median seconds of each step for each size, over recent running nodes (as read at
    most MEDIANS_SECONDS ago, in this process)."""
    return _recent(frozenset(size_ids))


def _read_medians(size_ids: frozenset[int]) -> dict[tuple[int, str], float]:
    rows = (
        NodeStep.objects.filter(
            node__pool__size_id__in=size_ids,
            node__status=NodeStatus.RUNNING,
            started_at__isnull=False,
            finished_at__isnull=False,
            failed=False,
        )
        .order_by("-finished_at")
        .values_list("node__pool__size_id", "step", "started_at", "finished_at")[
            : RECENT * len(steps.TABLE) * max(1, len(size_ids))
        ]
    )
    durations: dict[tuple[int, str], list[float]] = defaultdict(list)
    for size_id, step, started, finished in rows:
        key = (size_id, step)
        if started and finished and len(durations[key]) < RECENT:
            durations[key].append((finished - started).total_seconds())
    return {key: median(values) for key, values in durations.items()}


_recent = recently.Kept(MEDIANS_SECONDS, _read_medians)


def remaining_seconds(cluster: Cluster, now: datetime | None = None) -> float | None:
    """Seconds until the slowest active node is Ready (nodes run in parallel); None when done."""
    now = now or timezone.now()
    nodes = [n for n in cluster.nodes.all() if n.status in NODE_LAUNCHING]
    if not nodes:
        return None
    medians = step_medians({n.pool.size_id for n in nodes})
    slowest = 0.0
    for node in nodes:
        left = 0.0
        rows = {row.step: row for row in node.steps.all()}  # prefetched by the page
        for step in steps.NAMES:
            typical = medians.get((node.pool.size_id, step), DEFAULT_SECONDS)
            row = rows.get(step)
            if row is None or row.finished_at is not None:
                continue
            elapsed = (now - row.started_at).total_seconds() if row.started_at else 0.0
            left += max(0.0, typical - elapsed)
        slowest = max(slowest, left)
    return slowest
