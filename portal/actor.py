"""Who does something: the user, the organisation they act in, and how they came.

Views, API views, commands and tasks build one `Actor` and pass it to services, which
check it (`actor.require(Action.CHANGE, organisation)`) and write it to the audit log.
A service never sees an HTTP request.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from django.contrib.auth.models import User

from portal.errors import Forbidden
from portal.models import Membership, Organisation, Role


class Action(StrEnum):
    VIEW = "view"
    CHANGE = "change"
    ADMIN = "admin"


# The least role each action needs.
MINIMUM_ROLE = {Action.VIEW: Role.VIEWER, Action.CHANGE: Role.MEMBER, Action.ADMIN: Role.OWNER}


def roles_for(action: Action) -> list[Role]:
    """The roles that allow `action`."""
    minimum = MINIMUM_ROLE[action]
    return [role for role in Role if role.rank >= minimum.rank]


class Via(StrEnum):
    WEB = "web"
    API = "api"
    COMMAND = "command"
    TASK = "task"


@dataclass(frozen=True)
class Actor:
    """`is_system`: the portal itself (a periodic task, the reaper); an actor with no user
    that is not the system (an anonymous request) may do nothing.

    `organisation` is the one the actor works in (new objects go there); `bound` says it
    is also a limit (an API token acts in its own organisation only), where a signed-in
    user may act in any organisation they belong to.
    """

    user: User | None
    organisation: Organisation | None = None
    address: str | None = None
    via: Via = Via.WEB
    bound: bool = False
    is_system: bool = False
    # The roles read so far, by organisation: a request's permission check and its
    # service both ask, and an actor lives for one request, task or command.
    _roles: dict[int, Role | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def system(cls, via: Via = Via.TASK) -> "Actor":
        return cls(user=None, via=via, is_system=True)

    @property
    def is_staff(self) -> bool:
        return self.is_system or (self.user is not None and self.user.is_staff)

    def role_in(self, organisation: Organisation) -> Role | None:
        if self.user is None:
            return None
        if organisation.pk not in self._roles:
            role = (
                Membership.objects.filter(user=self.user, organisation=organisation)
                .values_list("role", flat=True)
                .first()
            )
            self._roles[organisation.pk] = Role(role) if role else None
        return self._roles[organisation.pk]

    def can(self, action: Action, organisation: Organisation) -> bool:
        if self.is_system:
            return True  # the portal acts on every organisation's behalf
        if self.user is None:
            return False
        if self.bound and self.organisation is not None and self.organisation != organisation:
            return False
        role = self.role_in(organisation)
        return role is not None and role.rank >= MINIMUM_ROLE[action].rank

    def require(self, action: Action, organisation: Organisation) -> None:
        """Forbidden (403) unless the actor's role in `organisation` allows `action`."""
        if not self.can(action, organisation):
            minimum = MINIMUM_ROLE[action]
            raise Forbidden(f"This needs the {minimum.label.lower()} role or higher.")

    def require_staff(self) -> None:
        if not self.is_staff:
            raise Forbidden("Only staff may do this.")
