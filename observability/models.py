from django.db import models


class WorkerHeartbeat(models.Model):
    """Written by a periodic task on a worker, so /readyz knows a worker answers."""

    hostname = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%H:%M:%S}"
