from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from portal.second_factor import VerifiedAdminSite

# The API readers style themselves inline and Redoc searches in a blob: worker; their
# scripts still come only from the portal's own static files.
docs_csp = csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]})

handler404 = "portal.api_errors.not_found"

# Staff enter the admin only after their second factor (portal.second_factor).
admin.site.__class__ = VerifiedAdminSite

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("portal.urls_accounts")),
    path("api/v1/", include("cloud.urls_api")),
    # The OpenAPI 3 document, and two readers of it served from the portal's own static files.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        docs_csp(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        docs_csp(SpectacularRedocView.as_view(url_name="api-schema")),
        name="api-redoc",
    ),
    path("", include("observability.urls")),
    path("", include("observability.webhooks.urls")),
    path("", include("provisioning.urls")),
    path("", include("networking.urls")),
    path("", include("portal.urls")),
]
