from typing import Any

from django.urls import path

from observability.webhooks import api

# Explicit paths: the API's URLs have no trailing slash.
collection: dict[str, Any] = {"get": "list", "post": "create"}
item: dict[str, Any] = {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}

urlpatterns = [
    path("webhooks", api.WebhookViewSet.as_view(collection), name="api-webhook-list"),
    path("webhooks/<uuid:pk>", api.WebhookViewSet.as_view(item), name="api-webhook"),
    path(
        "webhooks/<uuid:pk>/deliveries",
        api.WebhookViewSet.as_view({"get": "deliveries"}),
        name="api-webhook-deliveries",
    ),
    path(
        "webhooks/<uuid:pk>/ping",
        api.WebhookViewSet.as_view({"post": "ping"}),
        name="api-webhook-ping",
    ),
]
