"""The Celery app. Workers are the only processes that talk to hypervisors."""

import os

from celery import Celery

from cloud import broker as _broker  # noqa: F401  (registers the atomicfs:// transport)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")

app = Celery("cloud")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _periodic_tasks(sender: Celery, **kwargs: object) -> None:
    from django.conf import settings

    sender.add_periodic_task(
        float(settings.WORKER_HEARTBEAT_SECONDS),
        sender.signature("observability.tasks.heartbeat"),
        name="worker heartbeat",
    )
    for name, seconds in settings.PERIODIC_TASKS.items():
        sender.add_periodic_task(float(seconds), sender.signature(name), name=name)
