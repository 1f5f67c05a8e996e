"""Seed the embedded demo: the supercluster and a demo login (password printed).

Idempotent: a second run keeps what is there.
"""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from portal import organisations
from portal.models import Membership, Organisation, Role
from portal.secrets import generated_secret
from provisioning import demo


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
        demo.seed(settings.DATA_DIR)
        self.stdout.write(f"Demo login: demo / {password}")
