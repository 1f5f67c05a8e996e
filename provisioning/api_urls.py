from django.urls import path

from provisioning import api

urlpatterns = [
    path("clusters", api.ClusterListView.as_view(), name="api-cluster-list"),
]
