"""Network and firewall pages: thin views over networking.services, htmx for rule edits."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from networking import rules, services
from networking.forms import FirewallForm, NetworkForm
from networking.models import Firewall, FirewallRollout, Network
from portal import access
from portal.models import Organisation, Role
from provisioning.models import Cluster
from provisioning.states import ClusterStatus

RULE_FIELDS = ("direction", "protocol", "ports", "cidr", "label")


def _can_change(request: HttpRequest, organisation: Organisation) -> bool:
    role = access.role_in(request.user, organisation)
    return role is not None and role.rank >= Role.MEMBER.rank


def _networks(request: HttpRequest, organisation: Organisation) -> QuerySet[Network]:
    return access.for_user(Network.objects.live(), request.user, organisation)


def _firewalls(request: HttpRequest, organisation: Organisation) -> QuerySet[Firewall]:
    return access.for_user(Firewall.objects.live(), request.user, organisation)


def _form_errors(form: NetworkForm | FirewallForm, error: ValidationError) -> None:
    for field, problems in error.message_dict.items():
        form.add_error(field if field in form.fields else None, problems)


@login_required
def network_list(request: HttpRequest) -> HttpResponse:
    organisation = access.organisation_or_404(request)
    form = NetworkForm(request.POST or None)
    if request.method == "POST":
        access.require_role(request.user, organisation, Role.MEMBER)
        if form.is_valid():
            data = form.cleaned_data
            try:
                network = services.create_network(
                    organisation, data["region"], data["name"], data["cidr"], request=request
                )
            except ValidationError as error:
                _form_errors(form, error)
            else:
                messages.success(
                    request, f"Network {network.name} created (VXLAN {network.segment_id})."
                )
                return redirect("networking:network_list")
    live = Cluster.objects.exclude(status=ClusterStatus.DELETED).only("name", "network_id")
    networks = (
        _networks(request, organisation)
        .select_related("region")
        .annotate(ips_in_use=Count("allocations", distinct=True))
        .prefetch_related(Prefetch("clusters", queryset=live, to_attr="live_clusters"))
    )
    return render(
        request,
        "networking/network_list.html",
        {
            "organisation": organisation,
            "networks": networks,
            "form": form,
            "can_change": _can_change(request, organisation),
        },
    )


@login_required
@require_POST
def network_delete(request: HttpRequest, pk: str) -> HttpResponse:
    network = get_object_or_404(
        access.for_user(Network.objects.live(), request.user).select_related("organisation"),
        uuid=pk,
    )
    access.require_role(request.user, network.organisation, Role.MEMBER)
    try:
        services.delete_network(network, request=request)
    except services.InUse as error:
        messages.error(request, f"{error.message} Delete those clusters first.")
    else:
        messages.success(request, f"Network {network.name} deleted.")
    return redirect("networking:network_list")


@login_required
def firewall_list(request: HttpRequest) -> HttpResponse:
    organisation = access.organisation_or_404(request)
    networks = _networks(request, organisation)
    form = FirewallForm(request.POST or None, networks=networks)
    if request.method == "POST":
        access.require_role(request.user, organisation, Role.MEMBER)
        if form.is_valid():
            data = form.cleaned_data
            try:
                firewall = services.create_firewall(
                    organisation,
                    data["network"],
                    data["name"],
                    rules.default_rules(data["network"].cidr),
                    request=request,
                )
            except ValidationError as error:
                _form_errors(form, error)
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
            "can_change": _can_change(request, organisation),
        },
    )


def _firewall(request: HttpRequest, pk: str) -> Firewall:
    return get_object_or_404(
        access.for_user(Firewall.objects.live(), request.user)
        .select_related("network", "organisation")
        .prefetch_related(
            Prefetch("rollouts", FirewallRollout.objects.select_related("hypervisor"))
        ),
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
            "can_change": _can_change(request, firewall.organisation),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def firewall_rules(request: HttpRequest, pk: str) -> HttpResponse:
    """GET: the rules (?edit=1: as a form); POST: save them (a new revision, rolled out)."""
    firewall = _firewall(request, pk)
    if request.method == "GET":
        editing = request.GET.get("edit") == "1"
        if editing:
            access.require_role(request.user, firewall.organisation, Role.MEMBER)
        return _rules_partial(request, firewall, editing=editing)
    access.require_role(request.user, firewall.organisation, Role.MEMBER)
    rows = _rules_from_post(request)
    try:
        services.update_firewall(firewall, request=request, rule_list=rows)
    except rules.InvalidRules as error:
        return _rules_partial(request, firewall, editing=True, rows=rows, errors=error.errors)
    return _rules_partial(request, _firewall(request, pk))


@login_required
@require_POST
def firewall_delete(request: HttpRequest, pk: str) -> HttpResponse:
    firewall = _firewall(request, pk)
    access.require_role(request.user, firewall.organisation, Role.MEMBER)
    try:
        services.delete_firewall(firewall, request=request)
    except services.InUse as error:
        messages.error(request, f"{error.message} Delete those clusters first.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Firewall {firewall.name} deleted.")
    return redirect("networking:firewall_list")
