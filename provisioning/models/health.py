"""What running nodes report about themselves: the guest agent's heartbeats (a bounded
history, for the cluster page's charts) and each node's health verdict
(provisioning.node_health decides it)."""

from django.db import models


class HealthState(models.TextChoices):
    UNKNOWN = "unknown"  # running, no heartbeat yet
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class NodeHealth(models.Model):
    """One per node that has been running: its verdict and what it was decided from."""

    node = models.OneToOneField(
        "provisioning.Node", primary_key=True, on_delete=models.CASCADE, related_name="health"
    )
    state = models.CharField(max_length=10, choices=HealthState.choices)
    reason = models.CharField(max_length=200, blank=True)
    changed_at = models.DateTimeField()
    seen_at = models.DateTimeField(null=True, blank=True)  # the last heartbeat
    k3s_state = models.CharField(max_length=20, blank=True)  # its k3s unit, as systemd says
    # Its STATUS in the server's `kubectl get nodes` (Ready, NotReady...), ABSENT when the
    # server's list lacks it, blank until the server has reported a list.
    kube_status = models.CharField(max_length=40, blank=True)
    # The newest heartbeat kept in the history: whether the next is kept needs no read of it.
    sampled_at = models.DateTimeField(null=True, blank=True)

    ABSENT = "absent"

    organisation_path = "node__cluster__organisation"

    def __str__(self) -> str:
        return f"{self.node}: {self.state}"


class NodeHeartbeat(models.Model):
    """One heartbeat's figures; provisioning.node_health keeps the last hour per node."""

    node = models.ForeignKey(
        "provisioning.Node", on_delete=models.CASCADE, related_name="heartbeats"
    )
    at = models.DateTimeField()
    load1 = models.FloatField()
    cpu_percent = models.FloatField()
    memory_used_mib = models.PositiveIntegerField()
    memory_total_mib = models.PositiveIntegerField()
    disk_used_percent = models.FloatField()
    k3s_state = models.CharField(max_length=20)

    organisation_path = "node__cluster__organisation"

    class Meta:
        ordering = ["id"]
        # By node for the charts, by age for the beat's pruning of every node at once.
        indexes = [models.Index(fields=["node", "id"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.node} at {self.at:%H:%M:%S}"

    @property
    def memory_percent(self) -> float:
        total = self.memory_total_mib
        return 100.0 * self.memory_used_mib / total if total else 0.0
