"""The staff console: the dashboard (/staff/), any organisation's cluster as its owners
see it (read-only), and the hypervisors' page (capacity, state, last sync, cordon)."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from portal import access
from portal.second_factor import staff_verified_required
from provisioning import cluster_page, draining, inventory, staff_dashboard
from provisioning.models import Cluster, Hypervisor

_CHANGES = {
    "cordon": inventory.cordon,
    "uncordon": inventory.uncordon,
    "drain": draining.drain,
    "cancel-drain": draining.cancel,
}


@staff_verified_required
def staff_hypervisor_list(request: HttpRequest) -> HttpResponse:
    """GET the table; POST `name` and `action` (cordon/uncordon), then back to the table."""
    if request.method == "POST":
        change = _CHANGES.get(request.POST.get("action", ""))
        if change is None:
            return HttpResponse(f"action must be one of {', '.join(_CHANGES)}", status=400)
        hypervisor = get_object_or_404(Hypervisor, name=request.POST.get("name", ""))
        try:
            changed = change(access.actor(request), hypervisor)
        except inventory.HypervisorStateConflict as err:
            messages.error(request, str(err))
        else:
            hypervisor.refresh_from_db()
            draining_now = " and draining" if hypervisor.draining_since else ""
            already = "" if changed else "already "
            messages.success(
                request, f"{hypervisor.name} is {already}{hypervisor.state}{draining_now}."
            )
        return redirect("provisioning:staff_hypervisor_list")
    hypervisors = list(Hypervisor.objects.select_related("region"))
    for host in hypervisors:
        host.drain = draining.progress(host) if host.draining_since else None  # type: ignore[attr-defined]
    return render(request, "provisioning/staff_hypervisor_list.html", {"hypervisors": hypervisors})


@staff_verified_required
def staff_dashboard_page(request: HttpRequest) -> HttpResponse:
    return render(request, "provisioning/staff_dashboard.html", staff_dashboard.figures())


@staff_verified_required
def staff_cluster(request: HttpRequest, cluster_id: str) -> HttpResponse:
    """A cluster of any organisation: its progress, nodes, health and timeline."""
    cluster = get_object_or_404(
        cluster_page.with_nodes(Cluster.objects.select_related("organisation")), uuid=cluster_id
    )
    return render(request, "provisioning/staff_cluster.html", cluster_page.live_context(cluster))
