"""Websocket routes. Origin checked first, then session or bearer-token user."""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from portal.ws_auth import BearerTokenAuthMiddleware
from provisioning.live import ClusterEventsConsumer, ClusterLiveConsumer

websocket_urlpatterns = [
    path("ws/clusters/<uuid:cluster_id>/events/", ClusterEventsConsumer.as_asgi()),
    path("ws/clusters/<uuid:cluster_id>/live/", ClusterLiveConsumer.as_asgi()),
]

websocket_application = AllowedHostsOriginValidator(
    AuthMiddlewareStack(BearerTokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
)
