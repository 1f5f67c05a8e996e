"""The one place that decides what a user may see and change.

Every view, API viewset and consumer starts from `for_user()` (or `get_or_404()`), so
another organisation's object is simply not found (404), never a 403 that confirms it
exists; `action` says what the caller is about to do, and a member whose role does not
allow it gets 403. Requests become an `Actor` here, once, for the services.
"""

from typing import Any, TypeVar

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from rest_framework.request import Request

from portal.actor import Action, Actor, Via, roles_for
from portal.models import ApiToken, Membership, Organisation

M = TypeVar("M", bound=Model)

SESSION_KEY = "organisation"


def organisation_path(model: type[Model]) -> str:
    """The lookup from a model to its organisation (models say it in `organisation_path`)."""
    if model is Organisation:
        return ""
    return getattr(model, "organisation_path", "organisation")


def organisation_of(obj: Model) -> Organisation:
    """The organisation an object belongs to, following its model's `organisation_path`."""
    target: Any = obj
    for name in filter(None, organisation_path(type(obj)).split("__")):
        target = getattr(target, name)
    assert isinstance(target, Organisation)
    return target


def for_user(
    queryset: QuerySet[M],
    user: User | AnonymousUser,
    action: Action | str = Action.VIEW,
    organisation: Organisation | None = None,
) -> QuerySet[M]:
    """Rows of organisations where the user's role allows `action` (only `organisation`,
    when given)."""
    if not user.is_authenticated:
        return queryset.none()
    path = organisation_path(queryset.model)
    prefix = f"{path}__" if path else ""
    allowed = Membership.objects.filter(user=user, role__in=roles_for(Action(action)))
    if organisation is not None:
        allowed = allowed.filter(organisation=organisation)
    return queryset.filter(**{f"{prefix}pk__in": allowed.values("organisation_id")})


def token_organisation(request: HttpRequest) -> Organisation | None:
    """A bearer token is bound to one organisation; a session is not."""
    auth = getattr(request, "auth", None)
    return auth.organisation if isinstance(auth, ApiToken) else None


def for_request(
    queryset: QuerySet[M], request: HttpRequest, action: Action | str = Action.VIEW
) -> QuerySet[M]:
    return for_user(queryset, request.user, action, token_organisation(request))


def get_or_404(
    queryset: QuerySet[M], request: HttpRequest, action: Action | str = Action.VIEW, **lookup: Any
) -> M:
    """The object, 404 when the caller cannot see it, 403 when they may see but not `action`."""
    obj = get_object_or_404(for_request(queryset, request), **lookup)
    if Action(action) != Action.VIEW:
        actor(request).require(Action(action), organisation_of(obj))
    return obj


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


def can(request: HttpRequest, action: Action | str, organisation: Organisation) -> bool:
    """For templates: whether to offer a change at all (services check again)."""
    return actor(request).can(Action(action), organisation)


def actor(request: HttpRequest) -> Actor:
    """The request's actor, built once per request (API requests say so by their `auth`)."""
    cached = getattr(request, "_portal_actor", None)
    if cached is not None:
        return cached
    user = request.user if isinstance(request.user, User) else None
    bound = token_organisation(request)
    made = Actor(
        user=user,
        organisation=bound or (current_organisation(request) if user else None),
        address=request.META.get("REMOTE_ADDR") or None,
        via=Via.API if isinstance(request, Request) else Via.WEB,
        bound=bound is not None,
    )
    request._portal_actor = made  # type: ignore[attr-defined]
    return made


def signed_in(request: HttpRequest) -> User:
    """The user of a view behind login_required (narrows the type for the checker)."""
    user = request.user
    if not isinstance(user, User):
        raise Http404("Sign in first.")
    return user
