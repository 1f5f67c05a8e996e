"""Seed the embedded demo: a demo login (password printed), idempotent on re-runs."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from cloud.env import generated_secret
from portal import organisations
from portal.models import Membership, Organisation, Role


class Command(BaseCommand):
    help = "Create the demo user and organisation (and later seeds) when missing."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        password = generated_secret(settings.DATA_DIR / "demo_password", "password")
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username="demo", defaults={"email": "demo@example.com"}
        )
        if created:
            user.set_password(password)
            user.save()
        organisation = Organisation.objects.filter(slug="demo").first()
        if organisation is None:
            organisations.create_organisation(user, "Demo", slug="demo")
        else:
            Membership.objects.get_or_create(
                user=user, organisation=organisation, defaults={"role": Role.OWNER}
            )
        self.stdout.write(f"Demo login: demo / {password}")
