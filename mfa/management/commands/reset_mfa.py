"""Turn a user's two-factor authentication off from a shell, when their app and recovery codes are lost.

    python manage.py reset_mfa ann@example.com --reason "ticket 4711, identity checked by phone"

The user logs in with their password alone afterwards and may enrol a new
app. It writes the `user.mfa_disabled` event and an audit line (`wallet.audit`,
"mfa reset", by "shell"); the admin's reset button does the same and records
the staff member in the staff-action history too.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from mfa.services import mfa_reset


class Command(BaseCommand):
    help = "Turn a user's two-factor authentication off (their authenticator app and recovery codes are removed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="The user's login email (any case).")
        parser.add_argument("--reason", default="", help="Why, for the audit log (a ticket, how identity was checked).")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.login_matches(options["email"]).first()
        if user is None:
            raise CommandError(f"No user with the email {options['email']!r}.")
        if mfa_reset(user=user, staff=None, reason=options["reason"]):
            self.stdout.write(f"Two-factor authentication of {user.email} is reset: the password alone logs in.")
        else:
            self.stdout.write(f"{user.email} had no two-factor authentication; nothing changed.")
