"""Re-encrypt every TOTP secret with the first key of MFA_ENCRYPTION_KEY.

To rotate the key: put a new key first in MFA_ENCRYPTION_KEY, keeping the
old one after it (`MFA_ENCRYPTION_KEY=new,old`), deploy, run this command,
then remove the old key. Secrets are readable throughout: every key
decrypts, the first encrypts.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from mfa.services import secrets_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt every TOTP secret with the first key of MFA_ENCRYPTION_KEY (after adding a new key first)."

    def handle(self, *args: Any, **options: Any) -> None:
        count = secrets_reencrypt()
        self.stdout.write(f"Re-encrypted {count} TOTP secret(s) with the first key of MFA_ENCRYPTION_KEY.")
