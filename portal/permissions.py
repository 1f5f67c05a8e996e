"""The one DRF permission: reading needs the viewer role, changing needs member.

Lists and creates are checked against the organisation the caller acts in, an object
against its own organisation. Objects outside the caller's organisations never get here:
the viewsets' querysets come from `access.for_request`, so those are 404.
"""

from typing import Any

from django.db.models import Model
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from portal import access
from portal.actor import Action


def action_of(request: Request) -> Action:
    return Action.VIEW if request.method in permissions.SAFE_METHODS else Action.CHANGE


class RolePermission(permissions.IsAuthenticated):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if not super().has_permission(request, view):
            return False
        lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", "pk")
        if lookup in view.kwargs:
            return True  # an object's own organisation decides (has_object_permission)
        if request.method in permissions.SAFE_METHODS:
            return True  # a list is scoped by its queryset: empty outside any organisation
        organisation = access.current_organisation(request)
        return organisation is not None and access.actor(request).can(Action.CHANGE, organisation)

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        assert isinstance(obj, Model)
        action = action_of(request)
        if action == Action.VIEW:
            return True  # found through access.for_request: the caller may view it
        return access.actor(request).can(action, access.organisation_of(obj))
