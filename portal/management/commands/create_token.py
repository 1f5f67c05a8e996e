"""Issue an API token from the shell: the raw token is the last line of stdout."""

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from portal import audit, organisations, tokens
from portal.actor import Actor, Via
from portal.models import Membership, Organisation, Role


class Command(BaseCommand):
    help = "Create an API token for USERNAME in organisation SLUG."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--org", required=True, help="organisation slug")
        parser.add_argument(
            "--create", action="store_true", help="create the user and organisation if missing"
        )
        parser.add_argument("--role", choices=[r.value for r in Role], default=None)
        parser.add_argument("--staff", action="store_true", help="make the user staff")
        parser.add_argument("--name", default="cli", help="token name")
        parser.add_argument("--days", type=int, default=None, help="lifetime in days")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username, slug, create = options["username"], options["org"], options["create"]
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create:
                raise CommandError(f"No user {username!r} (use --create).")
            user = User.objects.create_user(username=username)
            user.set_unusable_password()
            user.save()
        if options["staff"] and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        organisation = Organisation.objects.filter(slug=slug).first()
        if organisation is None:
            if not create:
                raise CommandError(f"No organisation {slug!r} (use --create).")
            organisation = organisations.create_organisation(user, slug, slug=slug)
        membership = Membership.objects.filter(user=user, organisation=organisation).first()
        if membership is None:
            if not create:
                raise CommandError(f"{username} is not a member of {slug}.")
            membership = Membership.objects.create(
                user=user, organisation=organisation, role=options["role"] or Role.OWNER
            )
        elif options["role"] and membership.role != options["role"]:
            membership.role = options["role"]
            membership.save(update_fields=["role"])
        days = options["days"] or None
        token, raw = tokens.issue(
            user, organisation, options["name"], timedelta(days=days) if days else None
        )
        audit.record(
            "token.create", token, Actor(user=user, via=Via.COMMAND), organisation=organisation
        )
        self.stdout.write(f"Token {token.prefix}… for {username} in {slug} ({membership.role}):")
        self.stdout.write(raw)
