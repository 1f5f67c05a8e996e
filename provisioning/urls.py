from django.urls import path

from provisioning import guest_views, launch_times, metrics, staff_views, views

app_name = "provisioning"

urlpatterns: list = [
    path("metrics", metrics.metrics, name="metrics"),
    path("status/launch-times", launch_times.launch_times, name="launch_times"),
    path("clusters/", views.cluster_list, name="cluster_list"),
    path("clusters/new/", views.cluster_create, name="cluster_create"),
    path("clusters/new/pool-row/", views.pool_row, name="pool_row"),
    path("clusters/preflight/", views.cluster_preflight, name="cluster_preflight"),
    path("clusters/<uuid:cluster_id>/", views.cluster_detail, name="cluster_detail"),
    path("clusters/<uuid:cluster_id>/delete/", views.cluster_delete, name="cluster_delete"),
    path("clusters/<uuid:cluster_id>/retry/", views.cluster_retry, name="cluster_retry"),
    path("clusters/<uuid:cluster_id>/upgrade/", views.cluster_upgrade, name="cluster_upgrade"),
    path(
        "clusters/<uuid:cluster_id>/pools/<str:pool_name>/scale/",
        views.cluster_scale,
        name="cluster_scale",
    ),
    path("guest/<str:token>/<str:document>", guest_views.seed_document, name="guest_seed"),
    path("staff/", staff_views.staff_dashboard_page, name="staff_dashboard"),
    path("staff/clusters/<uuid:cluster_id>/", staff_views.staff_cluster, name="staff_cluster"),
    path("staff/hypervisors/", staff_views.staff_hypervisor_list, name="staff_hypervisor_list"),
    path("staff/hypervisors/<slug:name>/", staff_views.staff_host, name="staff_host"),
    path("staff/clusters/", staff_views.staff_clusters, name="staff_clusters"),
    path("staff/nodes/", staff_views.staff_nodes, name="staff_nodes"),
    path("staff/orphans/", staff_views.staff_orphans, name="staff_orphans"),
    path("staff/organisations/", staff_views.staff_organisations, name="staff_organisations"),
    path("staff/audit/", staff_views.staff_audit, name="staff_audit"),
]
