from django.urls import path

from provisioning import staff_views

app_name = "provisioning"

urlpatterns: list = [
    path(
        "staff/hypervisors/",
        staff_views.staff_hypervisor_list,
        name="staff_hypervisor_list",
    ),
]
