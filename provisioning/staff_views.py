"""The staff console: the dashboard (/staff/), every organisation's clusters and nodes,
any cluster as its owners see it (read-only), the hypervisors (cordon, drain) and each
host's page, orphan domains, organisations and their quotas, the audit log. Every page is
staff-only behind the second factor; every change is audited."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from portal import access, audit
from portal.models import Organisation, Quota
from portal.second_factor import staff_verified_required
from provisioning import cluster_page, draining, inventory, staff_console, staff_dashboard
from provisioning.models import Cluster, Hypervisor, OrphanDomain

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


def _filtered_page(
    request: HttpRequest,
    template: str,
    statuses: list[str],
    rows: Callable[[dict[str, Any]], QuerySet[Any]],
) -> HttpResponse:
    """A list of `rows(filters)`; a bad filter is a 400 naming it."""
    form = staff_console.Filters(request.GET or None, statuses=statuses)
    if request.GET and not form.is_valid():
        context = {"form": form, "rows": [], "statuses": statuses}
        return render(request, template, context, status=400)
    chosen = form.cleaned_data if request.GET else dict.fromkeys(form.fields)
    context = {"form": form, "rows": rows(chosen), "statuses": statuses}
    return render(request, template, context)


@staff_verified_required
def staff_clusters(request: HttpRequest) -> HttpResponse:
    """Every organisation's clusters, by status, region, host or organisation."""
    return _filtered_page(
        request,
        "provisioning/staff_clusters.html",
        staff_console.CLUSTER_STATUSES,
        staff_console.clusters,
    )


@staff_verified_required
def staff_nodes(request: HttpRequest) -> HttpResponse:
    return _filtered_page(
        request, "provisioning/staff_nodes.html", staff_console.NODE_STATUSES, staff_console.nodes
    )


@staff_verified_required
def staff_host(request: HttpRequest, name: str) -> HttpResponse:
    host = get_object_or_404(Hypervisor.objects.select_related("region"), name=name)
    context = staff_console.host_page(host)
    context["drain"] = draining.progress(host) if host.draining_since else None
    return render(request, "provisioning/staff_host.html", context)


@staff_verified_required
def staff_orphans(request: HttpRequest) -> HttpResponse:
    orphans = OrphanDomain.objects.filter(removed_at__isnull=True).select_related("hypervisor")
    context = {"orphans": orphans, "grace": settings.ORPHAN_GRACE_SECONDS}
    return render(request, "provisioning/staff_orphans.html", context)


@staff_verified_required
def staff_organisations(request: HttpRequest) -> HttpResponse:
    """Every organisation's quota and use; POST `organisation` and the limits to change them."""
    status = 200
    if request.method == "POST":
        organisation = get_object_or_404(Organisation, slug=request.POST.get("organisation", ""))
        quota, _ = Quota.objects.get_or_create(organisation=organisation)
        before = {name: getattr(quota, name) for name in staff_console.QuotaForm.Meta.fields}
        form = staff_console.QuotaForm(request.POST, instance=quota)
        if form.is_valid():
            form.save()
            # Not form.changed_data: the fields' callable defaults make it count every one.
            changed = [name for name, value in before.items() if form.cleaned_data[name] != value]
            audit.record(
                "quota.change",
                quota,
                access.actor(request),
                organisation=organisation,
                before={name: before[name] for name in changed},
                after={name: form.cleaned_data[name] for name in changed},
            )
            messages.success(request, f"{organisation.name}'s quota is changed.")
            return redirect("provisioning:staff_organisations")
        messages.error(request, f"{organisation.name}: {form.errors.as_text()}")
        status = 400
    context = {"rows": staff_console.organisations()}
    return render(request, "provisioning/staff_organisations.html", context, status=status)


@staff_verified_required
def staff_audit(request: HttpRequest) -> HttpResponse:
    """The audit log, newest first, filtered; read-only (entries are never changed)."""
    form = staff_console.AuditFilters(request.GET or None)
    if request.GET and not form.is_valid():
        context: dict[str, Any] = {"form": form, "page": None}
        return render(request, "provisioning/staff_audit.html", context, status=400)
    chosen = form.cleaned_data if request.GET else dict.fromkeys(form.fields)
    page = Paginator(staff_console.audit(chosen), staff_console.AUDIT_PAGE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "provisioning/staff_audit.html", context)
