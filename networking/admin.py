"""Staff views of tenant networks: read-mostly, since segments and ports are allocated by
networking.services and networking.ipam, never typed in by hand."""

from django.contrib import admin

from networking.models import Firewall, FirewallRollout, Network, Port


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "region", "cidr", "segment_id", "deleted_at"]
    list_filter = ["region", "is_default"]
    search_fields = ["name", "organisation__slug", "cidr"]
    readonly_fields = ["uuid", "segment_id", "gateway", "cidr", "created_at", "deleted_at"]


class RolloutInline(admin.TabularInline):
    model = FirewallRollout
    extra = 0
    can_delete = False
    readonly_fields = ["hypervisor", "revision", "enforced", "reason", "updated_at"]


@admin.register(Firewall)
class FirewallAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "network", "revision", "is_default", "deleted_at"]
    search_fields = ["name", "organisation__slug"]
    readonly_fields = ["uuid", "revision", "created_at", "deleted_at"]
    inlines = [RolloutInline]


@admin.register(Port)
class PortAdmin(admin.ModelAdmin):
    list_display = ["address", "mac", "network", "owner", "created_at"]
    search_fields = ["address", "mac", "network__name", "owner"]
    readonly_fields = ["network", "address", "mac", "owner", "created_at"]
