from django.contrib import admin
from django.http import HttpRequest

from portal.models import ApiToken, AuditEntry, Invitation, Membership, Organisation, Quota


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


class QuotaInline(admin.StackedInline):
    model = Quota
    can_delete = False


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [QuotaInline, MembershipInline]


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ["organisation", "clusters", "nodes", "vcpus", "memory_mib", "networks"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "organisation", "expires_at", "last_used_at"]
    readonly_fields = ["prefix", "last_used_at", "created_at"]
    exclude = ["digest"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organisation", "role", "expires_at", "accepted_at"]
    exclude = ["digest"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "organisation", "action", "target_repr", "ip_address"]
    list_filter = ["action"]
    search_fields = ["target_repr", "target_id"]

    # The log is append-only, for staff too: no one adds (forges), changes or deletes an
    # entry here; PostgreSQL refuses changes and deletions below the ORM as well.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
