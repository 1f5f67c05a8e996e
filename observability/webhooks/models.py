"""Webhooks, their deliveries (one per event and webhook) and each delivery's attempts."""

import uuid

from django.conf import settings
from django.db import models

from observability.webhooks.destinations import host_of
from portal.fields import EncryptedTextField


class EventType(models.TextChoices):
    CLUSTER_RUNNING = "cluster.running"
    CLUSTER_FAILED = "cluster.failed"
    CLUSTER_DELETED = "cluster.deleted"
    NODE_FAILED = "node.failed"
    NODE_UNHEALTHY = "node.unhealthy"
    PING = "ping"  # sent when asked (POST .../ping), to any webhook: nobody subscribes to it


SUBSCRIBABLE = [t.value for t in EventType if t != EventType.PING]


class Webhook(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(
        "portal.Organisation", on_delete=models.CASCADE, related_name="webhooks"
    )
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list)  # a subset of SUBSCRIBABLE
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    # Made by the portal, shown once at creation; receivers check signatures with it.
    secret = EncryptedTextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        # The URL's query may hold the receiver's own token: only its host is shown.
        return f"webhook to {host_of(self.url)}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # not attempted yet
    RETRYING = "retrying"  # attempted, failed, due again at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up (24 h of retries) or refused (an unsafe address)


OPEN = [DeliveryStatus.PENDING, DeliveryStatus.RETRYING]


class Delivery(models.Model):
    """One event for one webhook. `body` is the exact JSON every attempt sends and signs."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField()  # the payload's id: the same for every webhook of an event
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    # What the event is about (a cluster's uuid): a webhook gets one subject's events in
    # order. Empty (a ping): no order.
    subject = models.CharField(max_length=64, blank=True)
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)  # the last failure, in words
    created_at = models.DateTimeField(auto_now_add=True)

    organisation_path = "webhook__organisation"

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["webhook", "subject", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.uuid} ({self.status})"


class Attempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)  # the first few KB
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="one_attempt_number")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"
