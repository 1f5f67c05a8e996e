"""Network and firewall pages: thin views over networking.services, htmx for rule edits."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from networking import rules, services
from networking.forms import FirewallForm, NetworkForm
from networking.models import Firewall, FirewallRollout, Network, related_model
from portal import access
from portal.actor import Action
from portal.errors import Invalid
from portal.forms import add_errors
from portal.models import Organisation

RULE_FIELDS = ("direction", "protocol", "ports", "cidr", "label")


def _networks(request: HttpRequest, organisation: Organisation) -> QuerySet[Network]:
    return access.for_user(Network.objects.live(), request.user, organisation=organisation)


def _firewalls(request: HttpRequest, organisation: Organisation) -> QuerySet[Firewall]:
    return access.for_user(Firewall.objects.live(), request.user, organisation=organisation)


def _live_clusters() -> Prefetch:
    """A network's clusters not yet gone, as `live_clusters` (provisioning's model, reached
    through the relation)."""
    clusters = related_model(Network, "clusters")._default_manager
    live = clusters.exclude(status=services.CLUSTER_DELETED).only("name", "network_id")
    return Prefetch("clusters", queryset=live, to_attr="live_clusters")


@login_required
def network_list(request: HttpRequest) -> HttpResponse:
    organisation = access.organisation_or_404(request)
    actor = access.actor(request)
    form = NetworkForm(request.POST or None)
    if request.method == "POST":
        actor.require(Action.CHANGE, organisation)  # a 403 before the form says anything
        if form.is_valid():
            data = form.cleaned_data
            try:
                network = services.create_network(
                    actor,
                    organisation,
                    data["region"],
                    data["name"],
                    data["cidr"],
                    egress=data["egress"],
                )
            except Invalid as error:
                add_errors(form, error)
            else:
                messages.success(
                    request, f"Network {network.name} created (VXLAN {network.segment_id})."
                )
                return redirect("networking:network_list")
    networks = (
        _networks(request, organisation)
        .select_related("region")
        .annotate(ips_in_use=Count("ports", distinct=True))
        .prefetch_related(_live_clusters())
    )
    return render(
        request,
        "networking/network_list.html",
        {
            "organisation": organisation,
            "networks": networks,
            "form": form,
            "can_change": access.can(request, Action.CHANGE, organisation),
        },
    )


@login_required
@require_POST
def network_delete(request: HttpRequest, pk: str) -> HttpResponse:
    network = access.get_or_404(
        Network.objects.live().select_related("organisation"), request, Action.CHANGE, uuid=pk
    )
    if request.POST.get("confirm") != network.name:
        messages.error(request, f"Confirm deleting {network.name} first.")
        return redirect("networking:network_list")
    try:
        services.delete_network(access.actor(request), network)
    except services.InUse as error:
        messages.error(request, f"{error.message} Delete those clusters first.")
    else:
        messages.success(request, f"Network {network.name} deleted.")
    return redirect("networking:network_list")


@login_required
def firewall_list(request: HttpRequest) -> HttpResponse:
    organisation = access.organisation_or_404(request)
    actor = access.actor(request)
    networks = _networks(request, organisation)
    form = FirewallForm(request.POST or None, networks=networks)
    if request.method == "POST":
        actor.require(Action.CHANGE, organisation)
        if form.is_valid():
            data = form.cleaned_data
            try:
                firewall = services.create_firewall(
                    actor,
                    organisation,
                    data["network"],
                    data["name"],
                    rules.default_rules(data["network"].cidr),
                )
            except Invalid as error:
                add_errors(form, error)
            else:
                messages.success(
                    request, f"Firewall {firewall.name} created with the default rules; edit them."
                )
                return redirect("networking:firewall_list")
    rollouts = FirewallRollout.objects.select_related("hypervisor")
    firewalls = (
        _firewalls(request, organisation)
        .select_related("network")
        .prefetch_related(Prefetch("rollouts", queryset=rollouts))
    )
    return render(
        request,
        "networking/firewall_list.html",
        {
            "organisation": organisation,
            "firewalls": firewalls,
            "form": form,
            "can_change": access.can(request, Action.CHANGE, organisation),
        },
    )


def _firewall(request: HttpRequest, pk: str, action: Action = Action.VIEW) -> Firewall:
    return access.get_or_404(
        Firewall.objects.live()
        .select_related("network", "organisation")
        .prefetch_related(
            Prefetch("rollouts", FirewallRollout.objects.select_related("hypervisor"))
        ),
        request,
        action,
        uuid=pk,
    )


def _rules_from_post(request: HttpRequest) -> list[dict[str, str]]:
    """One dict per submitted row; blank rows (the spare one) and removed rows are dropped."""
    columns = [request.POST.getlist(field) for field in RULE_FIELDS]
    removed = set(request.POST.getlist("remove"))
    rows = []
    for index, values in enumerate(zip(*columns, strict=False)):
        row = {f: v.strip() for f, v in zip(RULE_FIELDS, values, strict=True) if v.strip()}
        if str(index) in removed or not (row.keys() - {"direction", "protocol"}):
            continue
        rows.append(row)
    return rows


def _rules_partial(
    request: HttpRequest,
    firewall: Firewall,
    *,
    editing: bool = False,
    rows: list[dict[str, str]] | None = None,
    errors: rules.RuleErrors | None = None,
) -> HttpResponse:
    rows = firewall.rules if rows is None else rows
    return render(
        request,
        "networking/_partials/firewall_rules.html",
        {
            "firewall": firewall,
            "editing": editing,
            "rows": [(row, (errors or {}).get(str(i), {})) for i, row in enumerate(rows)],
            "directions": rules.DIRECTIONS,
            "protocols": rules.PROTOCOLS,
            "can_change": access.can(request, Action.CHANGE, firewall.organisation),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def firewall_rules(request: HttpRequest, pk: str) -> HttpResponse:
    """GET: the rules (?edit=1: as a form); POST: save them (a new revision, rolled out)."""
    editing = request.method == "POST" or request.GET.get("edit") == "1"
    firewall = _firewall(request, pk, Action.CHANGE if editing else Action.VIEW)
    if request.method == "GET":
        return _rules_partial(request, firewall, editing=editing)
    rows = _rules_from_post(request)
    try:
        services.update_firewall(access.actor(request), firewall, rule_list=rows)
    except rules.InvalidRules as error:
        return _rules_partial(request, firewall, editing=True, rows=rows, errors=error.errors)
    return _rules_partial(request, _firewall(request, pk))


@login_required
@require_POST
def firewall_delete(request: HttpRequest, pk: str) -> HttpResponse:
    firewall = _firewall(request, pk, Action.CHANGE)
    try:
        services.delete_firewall(access.actor(request), firewall)
    except services.InUse as error:
        messages.error(request, f"{error.message} Delete those clusters first.")
    except Invalid as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Firewall {firewall.name} deleted.")
    return redirect("networking:firewall_list")
