"""Staff manage the supercluster here; tenant clusters are shown read-only.

A hypervisor's state, totals and allocations are written by conditional UPDATEs (sync,
placement, cordon), so the change form shows them read-only and saves only what staff may
edit; saving the whole row would overwrite a concurrent claim with a stale value.
"""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from portal import access
from portal.actor import Actor
from provisioning import inventory
from provisioning.models import (
    BaseImage,
    Cluster,
    Hypervisor,
    K3sVersion,
    Node,
    NodePool,
    NodeSize,
    NodeStep,
    OrphanDomain,
    Region,
)


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["slug", "name"]
    search_fields = ["slug", "name"]


class HypervisorForm(forms.ModelForm):
    # Write-only: the stored value is never sent back to the browser.
    credentials = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="SSH or TLS client key for a remote URI, stored encrypted. "
        "Leave empty to keep the stored one.",
    )
    clear_credentials = forms.BooleanField(required=False)

    class Meta:
        model = Hypervisor
        fields = ["name", "region", "uri", "storage_pool", "cpu_overcommit", "memory_overcommit"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("credentials") and cleaned.get("clear_credentials"):
            raise forms.ValidationError("Either give new credentials or clear them, not both.")
        return cleaned


@admin.register(Hypervisor)
class HypervisorAdmin(admin.ModelAdmin):
    form = HypervisorForm
    # The model field stays out of the form: the write-only field of the same name is
    # applied in save_model, so an empty one keeps the stored credentials.
    exclude = ["credentials"]
    list_display = [
        "name",
        "region",
        "state",
        "vcpus",
        "memory",
        "domain_count",
        "synced_at",
        "sync_failures",
    ]
    list_filter = ["region", "state"]
    list_select_related = ["region"]
    search_fields = ["name", "uri"]
    actions = ["cordon", "uncordon"]
    readonly_fields = [
        "state",
        "vcpus",
        "memory",
        "domain_count",
        "synced_at",
        "sync_failures",
        "last_error",
        "has_credentials",
    ]
    fieldsets = [
        (None, {"fields": ["name", "region", "uri", "storage_pool", "state"]}),
        ("Capacity", {"fields": ["cpu_overcommit", "memory_overcommit", "vcpus", "memory"]}),
        (
            "Last sync",
            {"fields": ["domain_count", "synced_at", "sync_failures", "last_error"]},
        ),
        ("Credentials", {"fields": ["has_credentials", "credentials", "clear_credentials"]}),
    ]

    @admin.display(description="vCPUs allocated / capacity")
    def vcpus(self, obj: Hypervisor) -> str:
        return f"{obj.vcpus_allocated} / {obj.vcpus_capacity} ({obj.vcpus_total} physical)"

    @admin.display(description="Memory MiB allocated / capacity")
    def memory(self, obj: Hypervisor) -> str:
        return f"{obj.memory_mib_allocated} / {obj.memory_mib_capacity}"

    @admin.display(description="Credentials stored", boolean=True)
    def has_credentials(self, obj: Hypervisor) -> bool:
        return bool(obj.credentials)

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        assert isinstance(obj, Hypervisor)
        fields = list(HypervisorForm.Meta.fields)
        if form.cleaned_data.get("credentials"):
            obj.credentials = form.cleaned_data["credentials"]
            fields.append("credentials")
        elif form.cleaned_data.get("clear_credentials"):
            obj.credentials = ""
            fields.append("credentials")
        # The next inventory round (every few seconds) fills the totals: views never call
        # libvirt, and until then the host offers no capacity.
        obj.save(update_fields=fields if change else None)

    @admin.action(description="Cordon: no new nodes")
    def cordon(self, request: HttpRequest, queryset: QuerySet[Hypervisor]) -> None:
        self._change(request, queryset, inventory.cordon)

    @admin.action(description="Uncordon: take new nodes again")
    def uncordon(self, request: HttpRequest, queryset: QuerySet[Hypervisor]) -> None:
        self._change(request, queryset, inventory.uncordon)

    def _change(
        self,
        request: HttpRequest,
        queryset: QuerySet[Hypervisor],
        change: Callable[[Actor, Hypervisor], bool],
    ) -> None:
        changed, actor = 0, access.actor(request)
        for hypervisor in queryset:
            try:
                changed += change(actor, hypervisor)
            except inventory.HypervisorStateConflict as err:
                self.message_user(request, str(err), messages.WARNING)
        self.message_user(request, f"{changed} hypervisor(s) changed.")


@admin.register(NodeSize)
class NodeSizeAdmin(admin.ModelAdmin):
    list_display = ["slug", "vcpus", "memory_mib", "disk_gib", "monthly_price"]


class BaseImageInline(admin.TabularInline):
    model = BaseImage
    extra = 0


@admin.register(K3sVersion)
class K3sVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "is_default"]
    inlines = [BaseImageInline]


@admin.register(BaseImage)
class BaseImageAdmin(admin.ModelAdmin):
    list_display = ["version", "region", "volume_name"]
    list_filter = ["region", "version"]
    list_select_related = ["version", "region"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Tenant objects change only through the portal's services, which keep the invariants."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Cluster)
class ClusterAdmin(ReadOnlyAdmin):
    list_display = ["name", "organisation", "region", "k3s_version", "status", "created_at"]
    list_filter = ["status", "region"]
    list_select_related = ["organisation", "region", "k3s_version"]
    search_fields = ["name", "uuid", "organisation__slug"]
    exclude = ["server_ca_key", "client_ca_key", "join_token"]


@admin.register(NodePool)
class NodePoolAdmin(ReadOnlyAdmin):
    list_display = ["name", "cluster", "size", "count"]
    list_select_related = ["cluster", "size"]


@admin.register(Node)
class NodeAdmin(ReadOnlyAdmin):
    list_display = ["name", "cluster", "hypervisor", "status", "step", "error_code", "created_at"]
    list_filter = ["status"]
    list_select_related = ["cluster", "hypervisor"]
    search_fields = ["name", "uuid", "cluster__name"]
    exclude = ["token_digest"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Node]:
        return super().get_queryset(request).with_step()  # type: ignore[attr-defined]

    @admin.display(description="step")
    def step(self, node: Node) -> str:
        return node.step


@admin.register(NodeStep)
class NodeStepAdmin(ReadOnlyAdmin):
    list_display = ["node", "step", "attempt", "started_at", "finished_at", "failed"]
    list_filter = ["step", "failed"]
    list_select_related = ["node"]


@admin.register(OrphanDomain)
class OrphanDomainAdmin(ReadOnlyAdmin):
    """Written by reconciliation only; open records (no removed_at) are leaks to look at."""

    list_display = [
        "name",
        "hypervisor",
        "first_seen_at",
        "last_seen_at",
        "removed_at",
        "resolution",
    ]
    list_filter = [("removed_at", admin.EmptyFieldListFilter), "resolution", "hypervisor"]
    list_select_related = ["hypervisor"]
    search_fields = ["name", "hypervisor__name"]
