from django.urls import path
from rest_framework.routers import SimpleRouter

from provisioning import api, guest_views

router = SimpleRouter(trailing_slash=False)
router.register("clusters", api.ClusterViewSet, basename="api-cluster")

urlpatterns = [
    *router.urls,
    path("guest/phone-home", guest_views.PhoneHomeView.as_view(), name="api-phone-home"),
    path("guest/heartbeat", guest_views.HeartbeatView.as_view(), name="api-heartbeat"),
]
