"""The staff console's reads: every organisation's clusters and nodes (filtered), a host with
its nodes and its allocation over the last day, the organisations' quotas and use, and the
audit log (filtered). The pages are provisioning.staff_views; staff see, never tenants."""

from datetime import timedelta
from typing import Any

from django import forms
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from observability import charts
from portal.models import AuditEntry, Organisation, Quota
from provisioning import quotas
from provisioning.models import Cluster, HostSample, Hypervisor, Node, Region
from provisioning.states import ClusterStatus, NodeStatus

DAY = timedelta(hours=24)
AUDIT_PAGE = 100


class Filters(forms.Form):
    """The clusters' and nodes' filters; a bad one is a 400 naming it."""

    status = forms.CharField(required=False)
    region = forms.ModelChoiceField(Region.objects.all(), to_field_name="slug", required=False)
    host = forms.ModelChoiceField(Hypervisor.objects.all(), to_field_name="name", required=False)
    organisation = forms.ModelChoiceField(
        Organisation.objects.all(), to_field_name="slug", required=False
    )

    def __init__(self, *args: Any, statuses: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statuses = statuses

    def clean_status(self) -> str:
        status: str = self.cleaned_data["status"]
        if status and status not in self.statuses:
            raise forms.ValidationError(f"Not a status: use one of {', '.join(self.statuses)}.")
        return status


def filtered(rows: QuerySet[Any], chosen: dict[str, Any], lookups: dict[str, str]) -> Any:
    """`rows` narrowed by each filter that was given, through its lookup."""
    given = {lookup: chosen[name] for name, lookup in lookups.items() if chosen.get(name)}
    return rows.filter(**given)


def clusters(chosen: dict[str, Any]) -> QuerySet[Cluster]:
    rows = Cluster.objects.select_related("organisation", "region", "k3s_version")
    lookups = {"status": "status", "region": "region", "organisation": "organisation"}
    if chosen.get("host"):  # a subquery, so the node count below still counts every node
        rows = rows.filter(pk__in=Node.objects.filter(hypervisor=chosen["host"]).values("cluster"))
    live = Q(nodes__status__in=[NodeStatus.RUNNING, NodeStatus.PROVISIONING])
    picked = filtered(rows, chosen, lookups)
    return picked.annotate(live_nodes=Count("nodes", filter=live)).order_by("-created_at")[:500]


def nodes(chosen: dict[str, Any]) -> QuerySet[Node]:
    rows = Node.objects.with_step().select_related(
        "cluster__organisation", "cluster__region", "hypervisor"
    )
    lookups = {
        "status": "status",
        "region": "cluster__region",
        "host": "hypervisor",
        "organisation": "cluster__organisation",
    }
    return filtered(rows, chosen, lookups).order_by("-created_at")[:500]


CLUSTER_STATUSES = list(ClusterStatus.values)
NODE_STATUSES = list(NodeStatus.values)


def host_page(host: Hypervisor) -> dict[str, Any]:
    """The host's nodes, and its vCPUs and memory allocated over the last day."""
    now = timezone.now()
    samples = list(HostSample.objects.filter(hypervisor=host, at__gte=now - DAY).order_by("at"))
    window = DAY.total_seconds()

    def over_day(value: str, top: float) -> charts.Line:
        points = [((s.at - now + DAY).total_seconds(), getattr(s, value)) for s in samples]
        points.append((window, getattr(host, value)))  # and where it stands now
        return charts.line(points, window=window, top=top or 1, width=480, height=80)

    return {
        "host": host,
        "nodes": Node.objects.filter(hypervisor=host)
        .exclude(status=NodeStatus.DELETED)
        .select_related("cluster__organisation")
        .order_by("cluster__name", "name"),
        "vcpus": over_day("vcpus_allocated", host.vcpus_capacity),
        "memory": over_day("memory_mib_allocated", host.memory_mib_capacity),
        "samples": len(samples),
        "day_ago": now - DAY,
        "vcpus_scale": f"0 to {host.vcpus_capacity} vCPUs",
        "memory_scale": f"0 to {host.memory_mib_capacity} MiB",
    }


def organisations() -> list[dict[str, Any]]:
    """Every organisation with its quota and what it uses of it."""
    rows = []
    for organisation in Organisation.objects.annotate(members=Count("memberships")):
        quota, _ = Quota.objects.get_or_create(organisation=organisation)
        rows.append(
            {
                "organisation": organisation,
                "limit": quota,
                "used": quotas.usage(organisation),
                "form": QuotaForm(instance=quota, auto_id=False),
            }
        )
    return rows


class QuotaForm(forms.ModelForm):
    class Meta:
        model = Quota
        fields = ["clusters", "nodes", "vcpus", "memory_mib", "networks"]


class AuditFilters(forms.Form):
    organisation = forms.ModelChoiceField(
        Organisation.objects.all(), to_field_name="slug", required=False
    )
    actor = forms.CharField(required=False, max_length=150, help_text="username")
    action = forms.CharField(required=False, max_length=64, help_text="e.g. cluster. or node.")
    target = forms.CharField(required=False, max_length=200)
    since = forms.DateField(required=False)
    until = forms.DateField(required=False)


def audit(chosen: dict[str, Any]) -> QuerySet[AuditEntry]:
    rows = AuditEntry.objects.select_related("actor", "organisation")
    lookups = {
        "organisation": "organisation",
        "actor": "actor__username",
        "action": "action__startswith",
        "target": "target_repr__icontains",
        "since": "created_at__date__gte",
        "until": "created_at__date__lte",
    }
    return filtered(rows, chosen, lookups)
