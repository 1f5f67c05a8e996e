"""Customer pages for clusters: list, create with a live pre-flight, the live cluster page."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.middleware import HtmxDetails

from networking.models import Firewall, Network
from portal import access
from portal.actor import Action
from portal.errors import Conflict, Invalid
from portal.models import Organisation
from provisioning import (
    cluster_page,
    cluster_spec,
    k3s_flags,
    placement,
    quotas,
    services,
    upgrades,
)
from provisioning.cluster_spec import ClusterRequest
from provisioning.models import Cluster, K3sVersion, NodePool, NodeSize, Region
from provisioning.serializers import ClusterInput
from provisioning.states import CLUSTER_LIVE, NodeStatus


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _clusters(request: HttpRequest) -> Any:
    return access.for_user(
        Cluster.objects.all(), request.user, organisation=access.organisation_or_404(request)
    )


@login_required
def cluster_list(request: HtmxHttpRequest) -> HttpResponse:
    clusters = (
        _clusters(request)
        .filter(status__in=CLUSTER_LIVE)
        .select_related("region", "k3s_version")
        .annotate(
            node_total=Count("nodes", filter=~Q(nodes__status=NodeStatus.DELETED)),
            node_running=Count("nodes", filter=Q(nodes__status=NodeStatus.RUNNING)),
        )
    )
    template = (
        "provisioning/_partials/cluster_rows.html"
        if request.htmx
        else "provisioning/cluster_list.html"
    )
    return render(request, template, {"clusters": clusters})


def _form_data(request: HttpRequest) -> dict[str, Any]:
    """The form's fields in the API's shape, so one serializer validates both."""
    post = request.POST
    names = post.getlist("pool_name")

    def optional(field: str) -> list[str]:  # a row without it (a script's post) has none
        return post.getlist(field) + [""] * len(names)

    pools = [
        {
            "name": name.strip(),
            "size": size,
            "count": count,
            "labels": k3s_flags.labels_from_text(labels),
            "taints": k3s_flags.taints_from_text(taints),
            "labels_text": labels,
            "taints_text": taints,
        }
        for name, size, count, labels, taints in zip(
            names,
            post.getlist("pool_size"),
            post.getlist("pool_count"),
            optional("pool_labels"),
            optional("pool_taints"),
            strict=False,
        )
    ]
    data: dict[str, Any] = {
        "name": post.get("name", "").strip(),
        "region": post.get("region", ""),
        "pools": pools,
    }
    for field in ("k3s_version", "network", "firewall", "cni"):
        if post.get(field):
            data[field] = post[field]
    return data


def _choices(organisation: Organisation) -> dict[str, Any]:
    return {
        "regions": Region.objects.all(),
        "versions": K3sVersion.objects.all(),
        "sizes": NodeSize.objects.all(),
        "networks": Network.objects.filter(organisation=organisation).select_related("region"),
        "firewalls": Firewall.objects.filter(organisation=organisation).select_related("network"),
        "cnis": k3s_flags.Cni.choices,
    }


def _flatten(errors: Any) -> dict[str, str]:
    """DRF's nested errors as {"name": "...", "pools.0.count": "..."} for the template."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and value and not isinstance(value[0], str):
            for index, inner in enumerate(value):
                walk(f"{prefix}.{index}", inner)
        elif value:
            flat[prefix] = (
                " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
            )

    walk("", errors)
    return flat


def _parse(data: dict[str, Any]) -> tuple[ClusterRequest | None, dict[str, str]]:
    """The request the form asks for, or the errors by field (shape first, then rules)."""
    payload = ClusterInput(data=data)
    if not payload.is_valid():
        return None, _flatten(payload.errors)
    spec = payload.to_request()
    try:
        cluster_spec.validate(spec)
    except Invalid as error:
        return None, _flatten(error.message_dict)
    return spec, {}


@login_required
def cluster_create(request: HttpRequest) -> HttpResponse:
    organisation = access.organisation_or_404(request)
    errors: dict[str, str] = {}
    data: dict[str, Any] = {"pools": [{"name": "workers", "size": "small", "count": 3}]}
    if request.method == "POST":
        data = _form_data(request)
        spec, errors = _parse(data)
        if spec is not None:
            try:
                cluster = services.create_cluster(access.actor(request), spec)
            except Invalid as error:
                errors = _flatten(error.message_dict)
            else:
                messages.success(request, f"Launching {cluster.name}.", extra_tags=LIVE_BANNER)
                return redirect("provisioning:cluster_detail", cluster.uuid)
    for index, pool in enumerate(data["pools"]):
        prefix = f"pools.{index}."
        pool["errors"] = " ".join(
            f"{k[len(prefix) :]}: {v}" for k, v in errors.items() if k.startswith(prefix)
        )
    context = {**_choices(organisation), "data": data, "errors": errors}
    return render(request, "provisioning/cluster_form.html", context, status=400 if errors else 200)


@login_required
def pool_row(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "provisioning/_partials/pool_row.html",
        {"pool": {"count": 1}, "sizes": NodeSize.objects.all()},
    )


@login_required
@require_POST
def cluster_preflight(request: HttpRequest) -> HttpResponse:
    """As the user types: quota use after this cluster, whether placement fits, the price."""
    organisation = access.organisation_or_404(request)
    spec, errors = _parse(_form_data(request))
    context: dict[str, Any] = {"valid": spec is not None}
    if spec is not None:
        limit, after = (
            quotas.limits(organisation),
            quotas.usage(organisation) + quotas.of_nodes(spec.sizes, 1),
        )
        context.update(
            limit=limit,
            after=after,
            over=quotas.shortfalls(after, limit),
            price=sum(p.size.monthly_price * p.count for p in spec.pools),
        )
        try:
            context["plan"] = placement.plan(spec.region, spec.sizes, version=spec.k3s_version)
        except placement.PlacementError as error:
            context["placement_error"] = str(error)
    else:
        context["errors"] = errors
    return render(request, "provisioning/_partials/preflight.html", context)


def _cluster(request: HttpRequest, cluster_id: str) -> Cluster:
    return access.get_or_404(
        cluster_page.with_nodes(Cluster.objects.all()), request, uuid=cluster_id
    )


@login_required
def cluster_detail(request: HtmxHttpRequest, cluster_id: str) -> HttpResponse:
    cluster = _cluster(request, cluster_id)
    if request.htmx:  # the polling fallback: the live parts, swapped out of band
        return HttpResponse(cluster_page.live_fragments(cluster))
    context = {
        **cluster_page.live_context(cluster),
        "can_change": access.can(request, Action.CHANGE, cluster.organisation),
        "pools": cluster.pools.all(),
        "has_failed": any(n.status == NodeStatus.FAILED for n in cluster.nodes.all()),
        "upgrades": upgrades.available(cluster) if cluster.upgrade_to_id is None else [],
        "ttl_choices": [(3600, "1 hour"), (28800, "8 hours"), (86400, "1 day"), (604800, "7 days")],
    }
    return render(request, "provisioning/cluster_detail.html", context)


# What a banner says about an action under way; the live page shows how it goes, so the
# banner leaves with the first live update (static/js/portal.js).
LIVE_BANNER = "transient"


def _changeable(request: HttpRequest, cluster_id: str) -> Cluster:
    return access.get_or_404(Cluster.objects.all(), request, Action.CHANGE, uuid=cluster_id)


def _report(request: HttpRequest, error: Invalid) -> None:
    messages.error(request, " ".join(error.messages))


@login_required
@require_POST
def cluster_delete(request: HttpRequest, cluster_id: str) -> HttpResponse:
    cluster = _changeable(request, cluster_id)
    if request.POST.get("confirm_name", "").strip() != cluster.name:
        messages.error(request, f"Type the cluster's name ({cluster.name}) to delete it.")
        return redirect("provisioning:cluster_detail", cluster.uuid)
    services.delete_cluster(access.actor(request), cluster)
    messages.success(
        request,
        f"Deleting {cluster.name}; its resources are being given back.",
        extra_tags=LIVE_BANNER,
    )
    return redirect("provisioning:cluster_detail", cluster.uuid)


@login_required
@require_POST
def cluster_scale(request: HttpRequest, cluster_id: str, pool_name: str) -> HttpResponse:
    cluster = _changeable(request, cluster_id)
    pool = get_object_or_404(
        NodePool.objects.select_related("size", "cluster"), cluster=cluster, name=pool_name
    )
    try:
        count = int(request.POST.get("count", ""))
        services.scale_pool(access.actor(request), pool, count)
        messages.success(request, f"Scaling {pool.name} to {count}.", extra_tags=LIVE_BANNER)
    except ValueError:
        messages.error(request, "The node count must be a whole number.")
    except Invalid as error:
        _report(request, error)
    return redirect("provisioning:cluster_detail", cluster.uuid)


@login_required
@require_POST
def cluster_retry(request: HttpRequest, cluster_id: str) -> HttpResponse:
    cluster = _changeable(request, cluster_id)
    try:
        names = services.retry_failed(access.actor(request), cluster)
        messages.success(request, f"Retrying {', '.join(names)}.", extra_tags=LIVE_BANNER)
    except Invalid as error:
        _report(request, error)
    return redirect("provisioning:cluster_detail", cluster.uuid)


@login_required
@require_POST
def cluster_upgrade(request: HttpRequest, cluster_id: str) -> HttpResponse:
    cluster = _changeable(request, cluster_id)
    target = K3sVersion.objects.filter(version=request.POST.get("k3s_version", "")).first()
    try:
        if target is None:
            raise Invalid({"k3s_version": "Choose a version to upgrade to."})
        upgrades.start(access.actor(request), cluster, target)
        messages.success(request, f"Upgrading to {target}.", extra_tags=LIVE_BANNER)
    except (Invalid, Conflict) as error:
        messages.error(request, error.message)
    return redirect("provisioning:cluster_detail", cluster.uuid)
