from django.db import models

# Webhooks' models live in their package; importing them here registers them with the app.
from observability.webhooks.models import Attempt, Delivery, Webhook

__all__ = ["Attempt", "Delivery", "Event", "EventState", "Webhook", "WorkerHeartbeat"]


class WorkerHeartbeat(models.Model):
    """Written by a periodic task on a worker, so /readyz knows a worker answers."""

    hostname = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%H:%M:%S}"


class EventState(models.TextChoices):
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    INFO = "info"


class Event(models.Model):
    """The durable, ordered log of what happened to a cluster; the live view reads it."""

    cluster = models.ForeignKey(
        "provisioning.Cluster", on_delete=models.CASCADE, related_name="events"
    )
    node = models.CharField(max_length=63, blank=True)
    step = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=8, choices=EventState.choices)
    message = models.CharField(max_length=500)
    # db_default: the insert returns it, as step_ledger has it computed there.
    progress = models.PositiveSmallIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    organisation_path = "cluster__organisation"

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["cluster", "id"])]

    def __str__(self) -> str:
        return f"#{self.id} {self.message}"
