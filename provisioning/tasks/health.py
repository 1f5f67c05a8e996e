"""Nodes' health: beat marks running nodes whose heartbeat stopped (provisioning.node_health)."""

from celery import shared_task
from django.utils import timezone

from provisioning import node_health


@shared_task(name="provisioning.judge_silent_nodes", ignore_result=True)
def judge_silent_nodes() -> int:
    return node_health.judge_silent(timezone.now())
