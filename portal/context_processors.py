from typing import Any

from django.http import HttpRequest

from portal.access import current_organisation, memberships


def organisations(request: HttpRequest) -> dict[str, Any]:
    """The organisation switcher in the navigation."""
    return {
        "my_memberships": memberships(request.user),
        "current_organisation": current_organisation(request),
    }
