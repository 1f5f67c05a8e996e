from typing import Any

from django.urls import path

from networking import api

# Explicit paths: the API's URLs have no trailing slash.
collection: dict[str, Any] = {"get": "list", "post": "create"}
item: dict[str, Any] = {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}

urlpatterns = [
    path("networks", api.NetworkViewSet.as_view(collection), name="api-network-list"),
    path(
        "networks/<uuid:pk>",
        api.NetworkViewSet.as_view(item),
        name="api-network",
    ),
    path("firewalls", api.FirewallViewSet.as_view(collection), name="api-firewall-list"),
    path(
        "firewalls/<uuid:pk>",
        api.FirewallViewSet.as_view(item),
        name="api-firewall",
    ),
]
