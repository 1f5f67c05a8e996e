from django.urls import path

from provisioning import api

urlpatterns = [
    path("clusters", api.ClusterListView.as_view(), name="api-cluster-list"),
    path("clusters/<uuid:cluster_id>", api.ClusterDetailView.as_view(), name="api-cluster"),
    path("clusters/<uuid:cluster_id>/events", api.EventListView.as_view(), name="api-events"),
    path(
        "clusters/<uuid:cluster_id>/kubeconfig", api.KubeconfigView.as_view(), name="api-kubeconfig"
    ),
    path(
        "clusters/<uuid:cluster_id>/credentials",
        api.CredentialListView.as_view(),
        name="api-credentials",
    ),
    path("clusters/<uuid:cluster_id>/retry", api.RetryView.as_view(), name="api-retry"),
    path(
        "clusters/<uuid:cluster_id>/pools/<str:pool_name>",
        api.PoolView.as_view(),
        name="api-pool",
    ),
    path("guest/phone-home", api.PhoneHomeView.as_view(), name="api-phone-home"),
]
