"""Rotating MFA_ENCRYPTION_KEY: a new key first, `rotate_mfa_key`, then the old key can go."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command

from mfa.models import TOTPDevice
from tests.factories import UserFactory
from tests.second_factor import enrolled

pytestmark = pytest.mark.django_db


def test_rotating_the_key_keeps_every_secret_readable_then_drops_the_old_key(settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MFA_ENCRYPTION_KEYS = [old]
    users = [UserFactory(), UserFactory()]
    for user in users:
        enrolled(user)
    secrets_before = {user.pk: TOTPDevice.objects.get(user=user).secret for user in users}

    settings.MFA_ENCRYPTION_KEYS = [new, old]
    assert {user.pk: TOTPDevice.objects.get(user=user).secret for user in users} == secrets_before
    call_command("rotate_mfa_key")
    settings.MFA_ENCRYPTION_KEYS = [new]

    assert "Re-encrypted 2 TOTP secret(s)" in capsys.readouterr().out
    assert {user.pk: TOTPDevice.objects.get(user=user).secret for user in users} == secrets_before
    settings.MFA_ENCRYPTION_KEYS = [old]
    with pytest.raises(InvalidToken):
        TOTPDevice.objects.get(user=users[0]).secret
