"""The one place that decides what a user may see and change.

Every view, API viewset and consumer starts from `for_user()` (or `for_request()`), so
another organisation's object is simply not found (404), never a 403 that confirms it
exists. A member without the role for a change gets 403 from `require_role()`.
"""

from typing import TypeVar

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from portal.models import ApiToken, Membership, Organisation, Role

M = TypeVar("M", bound=Model)

SESSION_KEY = "organisation"


def organisation_path(model: type[Model]) -> str:
    """The lookup from a model to its organisation (models say it in `organisation_path`)."""
    if model is Organisation:
        return ""
    return getattr(model, "organisation_path", "organisation")


def for_user(
    queryset: QuerySet[M],
    user: User | AnonymousUser,
    organisation: Organisation | None = None,
) -> QuerySet[M]:
    """Rows of organisations the user belongs to (only `organisation`, when given)."""
    if not user.is_authenticated:
        return queryset.none()
    path = organisation_path(queryset.model)
    prefix = f"{path}__" if path else ""
    queryset = queryset.filter(**{f"{prefix}memberships__user": user})
    if organisation is not None:
        queryset = queryset.filter(**{f"{prefix}pk" if prefix else "pk": organisation.pk})
    return queryset


def token_organisation(request: HttpRequest) -> Organisation | None:
    """A bearer token is bound to one organisation; a session is not."""
    auth = getattr(request, "auth", None)
    return auth.organisation if isinstance(auth, ApiToken) else None


def for_request(queryset: QuerySet[M], request: HttpRequest) -> QuerySet[M]:
    return for_user(queryset, request.user, token_organisation(request))


def memberships(user: User | AnonymousUser) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("organisation")


def current_organisation(request: HttpRequest) -> Organisation | None:
    """The token's organisation, else the one chosen in the session, else the first."""
    bound = token_organisation(request)
    if bound is not None:
        return bound
    mine = memberships(request.user)
    chosen = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    membership = (mine.filter(organisation__uuid=chosen).first() if chosen else None) or (
        mine.order_by("created_at").first()
    )
    return membership.organisation if membership else None


def organisation_or_404(request: HttpRequest) -> Organisation:
    """The current organisation of a page's user; a user in none gets 404."""
    organisation = current_organisation(request)
    if organisation is None:
        raise Http404("You do not belong to an organisation.")
    return organisation


def acting_organisation(request: HttpRequest, minimum: Role = Role.MEMBER) -> Organisation:
    """The organisation an API change acts in, for `minimum` or above (else 403)."""
    organisation = current_organisation(request)
    if organisation is None:
        raise PermissionDenied("You belong to no organisation.")
    require_role(request.user, organisation, minimum)
    return organisation


def role_in(user: User | AnonymousUser, organisation: Organisation) -> Role | None:
    membership = memberships(user).filter(organisation=organisation).first()
    return Role(membership.role) if membership else None


def signed_in(request: HttpRequest) -> User:
    """The user of a view behind login_required (narrows the type for the checker)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("Sign in first.")
    return user


def require_role(user: User | AnonymousUser, organisation: Organisation, minimum: Role) -> Role:
    """The user's role, or PermissionDenied when it is below `minimum`.

    Callers reach this only with objects `for_user()` found, so the user is a member.
    """
    role = role_in(user, organisation)
    if role is None or role.rank < minimum.rank:
        raise PermissionDenied(f"This needs the {minimum.label.lower()} role or higher.")
    return role
