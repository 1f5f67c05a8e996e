"""Catalogue and staff API paths under /api/v1/."""

from django.urls import path

from provisioning import catalogue_api, staff_api

urlpatterns = [
    path("regions", catalogue_api.RegionList.as_view(), name="api-region-list"),
    path("sizes", catalogue_api.NodeSizeList.as_view(), name="api-size-list"),
    path("k3s-versions", catalogue_api.K3sVersionList.as_view(), name="api-k3s-version-list"),
    path(
        "staff/hypervisors",
        staff_api.HypervisorList.as_view(),
        name="api-staff-hypervisor-list",
    ),
    path(
        "staff/hypervisors/<slug:name>",
        staff_api.HypervisorDetail.as_view(),
        name="api-staff-hypervisor-detail",
    ),
    path(
        "staff/hypervisors/<slug:name>/cordon",
        staff_api.Cordon.as_view(),
        name="api-staff-hypervisor-cordon",
    ),
    path(
        "staff/hypervisors/<slug:name>/uncordon",
        staff_api.Uncordon.as_view(),
        name="api-staff-hypervisor-uncordon",
    ),
    path(
        "staff/hypervisors/<slug:name>/drain",
        staff_api.Drain.as_view(),
        name="api-staff-hypervisor-drain",
    ),
    path(
        "staff/hypervisors/<slug:name>/cancel-drain",
        staff_api.CancelDrain.as_view(),
        name="api-staff-hypervisor-cancel-drain",
    ),
    path("staff/orphans", staff_api.OrphanList.as_view(), name="api-staff-orphan-list"),
]
