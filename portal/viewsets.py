"""What every tenant API viewset shares: the role permission, objects by uuid, and the
organisation a list or a create acts in."""

from rest_framework import viewsets
from rest_framework.request import Request

from portal import access
from portal.errors import Forbidden
from portal.models import Organisation
from portal.permissions import RolePermission


def acting_in(request: Request) -> Organisation:
    """The organisation a list or a create acts in."""
    organisation = access.actor(request).organisation
    if organisation is None:  # RolePermission refuses such a caller first
        raise Forbidden("You do not belong to an organisation.")
    return organisation


class ScopedViewSet(viewsets.GenericViewSet):
    permission_classes = [RolePermission]
    lookup_field = "uuid"
    lookup_url_kwarg = "pk"
