"""API shapes of webhooks and their deliveries: types only, the rules are services'."""

from rest_framework import serializers

from observability.webhooks.models import Attempt, Delivery, Webhook


class WebhookUpdateInput(serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    # Checked by the service, whose error names `events` and the unknown ones.
    events = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    description = serializers.CharField(max_length=200, allow_blank=True, required=False)
    active = serializers.BooleanField(required=False)


class WebhookInput(WebhookUpdateInput):
    url = serializers.CharField(max_length=2000)
    events = serializers.ListField(child=serializers.CharField(max_length=40))
    description = serializers.CharField(max_length=200, allow_blank=True, default="")
    active = serializers.BooleanField(default=True)


class WebhookOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "active", "description", "created_at", "updated_at"]


class WebhookCreatedOutput(WebhookOutput):
    """The create answer: the only one that carries the signing secret."""

    class Meta(WebhookOutput.Meta):
        fields = [*WebhookOutput.Meta.fields, "secret"]


class AttemptOutput(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = ["number", "started_at", "duration_ms", "status_code", "response_body", "error"]


class DeliveryOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    type = serializers.CharField(source="event_type", read_only=True)
    attempts = AttemptOutput(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id", "event_id", "type", "status", "attempt_count", "last_status_code", "reason",
            "created_at", "first_attempt_at", "next_attempt_at", "settled_at", "attempts",
        ]  # fmt: skip
