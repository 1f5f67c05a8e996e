"""Webhook API: list/create, retrieve/patch/delete, a webhook's deliveries, ping.

Viewers read (deliveries included), members change and ping; the services check again.
"""

from django.db.models import QuerySet
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from observability.webhooks import services
from observability.webhooks.models import Delivery, Webhook
from observability.webhooks.serializers import (
    DeliveryOutput,
    WebhookCreatedOutput,
    WebhookInput,
    WebhookOutput,
    WebhookUpdateInput,
)
from portal import access
from portal.viewsets import ScopedViewSet, acting_in


class WebhookViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ScopedViewSet
):
    serializer_class = WebhookOutput

    def get_queryset(self) -> QuerySet[Webhook]:
        return access.for_request(Webhook.objects.all(), self.request).select_related(
            "organisation"
        )

    def create(self, request: Request) -> Response:
        payload = WebhookInput(data=request.data)
        payload.is_valid(raise_exception=True)
        webhook = services.create_webhook(
            access.actor(request), acting_in(request), **payload.validated_data
        )
        return Response(WebhookCreatedOutput(webhook).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        webhook = self.get_object()
        payload = WebhookUpdateInput(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        services.update_webhook(access.actor(request), webhook, **payload.validated_data)
        return Response(WebhookOutput(webhook).data)

    def perform_destroy(self, instance: Webhook) -> None:
        services.delete_webhook(access.actor(self.request), instance)

    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str) -> Response:
        """Newest first, each with its attempts."""
        rows = (
            Delivery.objects.filter(webhook=self.get_object())
            .prefetch_related("attempts")
            .order_by("-id")
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DeliveryOutput(page, many=True).data)

    @action(detail=True, methods=["post"])
    def ping(self, request: Request, pk: str) -> Response:
        delivery = services.ping(access.actor(request), self.get_object())
        delivery.refresh_from_db()  # sent on commit: eagerly (embedded calls, tests) it is done
        return Response(DeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)
