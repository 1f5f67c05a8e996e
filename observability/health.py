"""Readiness checks: the database, the broker, and a worker that answered recently."""

from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import connection
from django.utils import timezone

from observability.models import WorkerHeartbeat


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Check("database", True, connection.vendor)
    except Exception as error:
        return Check("database", False, type(error).__name__)


def broker() -> Check:
    try:
        # The project's app (cloud.celery), without this lower layer importing the project.
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return Check("broker", True, conn.transport_cls)
    except Exception as error:
        return Check("broker", False, type(error).__name__)


def worker() -> Check:
    window = timedelta(seconds=3 * settings.WORKER_HEARTBEAT_SECONDS)
    latest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    if latest is None:
        return Check("worker", False, "no worker has reported yet")
    age = (timezone.now() - latest.seen_at).total_seconds()
    fresh = latest.seen_at >= timezone.now() - window
    return Check("worker", fresh, f"{latest.hostname} {age:.0f}s ago")


def all_checks() -> list[Check]:
    return [database(), broker(), worker()]
