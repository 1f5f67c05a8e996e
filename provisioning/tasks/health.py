"""Nodes' health, on beat: mark running nodes whose heartbeat stopped (provisioning.node_health),
then replace the nodes unhealthy for longer than their cluster allows (provisioning.healing),
and drop the samples older than the charts' history."""

from celery import shared_task
from django.utils import timezone

from provisioning import healing, node_health


@shared_task(name="provisioning.watch_health", ignore_result=True)
def watch_health() -> int:
    """How many nodes were newly judged unhealthy for their silence."""
    now = timezone.now()
    silent = node_health.judge_silent(now)
    healing.heal(now)
    node_health.prune_history(now)
    return silent
