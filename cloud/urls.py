from django.contrib import admin
from django.urls import include, path

from portal.second_factor import VerifiedAdminSite

# Staff enter the admin only after their second factor (portal.second_factor).
admin.site.__class__ = VerifiedAdminSite

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("portal.urls_accounts")),
    path("api/v1/", include("cloud.urls_api")),
    path("", include("observability.urls")),
    path("", include("observability.webhooks.urls")),
    path("", include("provisioning.urls")),
    path("", include("networking.urls")),
    path("", include("portal.urls")),
]
