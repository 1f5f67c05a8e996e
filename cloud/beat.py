"""Celery beat's schedule from task names and their periods in seconds (cloud/settings.py)."""

from collections.abc import Mapping
from typing import Any


def every(periods: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Each task runs every `periods[task]` seconds; the entry is named after its task."""
    return {task: {"task": task, "schedule": float(seconds)} for task, seconds in periods.items()}
