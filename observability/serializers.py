"""API shape of an event: the REST event list and the websocket stream send the same."""

from rest_framework import serializers

from observability.models import Event


class EventOutput(serializers.ModelSerializer):
    node = serializers.SerializerMethodField()
    step = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = ["id", "created_at", "node", "step", "state", "message", "progress"]

    def get_node(self, event: Event) -> str | None:
        return event.node or None

    def get_step(self, event: Event) -> str | None:
        return event.step or None
