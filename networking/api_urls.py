from django.urls import path

from networking import api

urlpatterns = [
    path("networks", api.NetworkListView.as_view(), name="api-network-list"),
    path("networks/<uuid:pk>", api.NetworkDetailView.as_view(), name="api-network"),
    path("firewalls", api.FirewallListView.as_view(), name="api-firewall-list"),
    path("firewalls/<uuid:pk>", api.FirewallDetailView.as_view(), name="api-firewall"),
]
