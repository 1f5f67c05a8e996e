"""The Celery app. Workers are the only processes that talk to hypervisors."""

import os

from celery import Celery

from cloud import broker as _broker  # noqa: F401  (registers the atomicfs:// transport)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")

app = Celery("cloud")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Periodic tasks: CELERY_BEAT_SCHEDULE in cloud/settings.py.
