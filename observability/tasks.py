from celery import shared_task
from django.utils import timezone

from observability.models import WorkerHeartbeat
from observability.webhooks import tasks as webhook_tasks

__all__ = ["heartbeat", "webhook_tasks"]  # autodiscovery imports this module only


@shared_task(name="observability.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    hostname = heartbeat.request.hostname or "eager"
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now()}
    )
