"""Everything under /api/v1/, one include per app."""

from django.urls import include, path

urlpatterns = [
    path("", include("portal.api_urls")),
    path("", include("provisioning.api_urls")),
    path("", include("provisioning.staff_urls")),
    path("", include("networking.api_urls")),
    path("", include("observability.webhooks.api_urls")),
]
