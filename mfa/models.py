"""Second factors: a TOTP device per user (django-otp's `Device`), recovery codes, and half-finished logins.

None of these tables is enough to pass a second factor from a database dump:
the TOTP secret is encrypted with a key from the environment (`mfa.crypto`),
and recovery codes and login tokens are kept as SHA-256 hashes of random
values of 80 bits or more (too many to try, so no salt or slow hash is needed).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_otp.models import Device

from mfa import crypto


class TOTPDevice(Device):
    """A user's authenticator app: django-otp's device, with its secret encrypted at rest.

    At most one per user. It is `confirmed` once a first code proved that the
    app holds the secret; until then it is a pending enrolment and plays no
    part in logging in. `last_t` is the time step of the last code accepted:
    only codes of later steps are accepted, so a code is accepted once.
    """

    encrypted_secret = models.TextField(help_text="The shared secret, encrypted with MFA_ENCRYPTION_KEY.")
    last_t = models.BigIntegerField(
        default=-1, help_text="The time step of the last code accepted; only later steps are accepted."
    )
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "TOTP device"
        constraints = [models.UniqueConstraint(fields=["user"], name="mfa_one_totp_device_per_user")]
        permissions = [("reset_mfa", "Can reset a user's two-factor authentication")]

    @property
    def secret(self) -> bytes:
        return crypto.decrypt(self.encrypted_secret)

    @secret.setter
    def secret(self, value: bytes) -> None:
        self.encrypted_secret = crypto.encrypt(value)


class RecoveryCode(models.Model):
    """One of a user's single-use recovery codes, for when the authenticator app is lost; kept as its hash."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "code_hash"], name="mfa_recovery_code_unique")]

    def __str__(self) -> str:
        return f"recovery code of {self.user_id}{' (used)' if self.used_at else ''}"


class LoginChallenge(models.Model):
    """A login whose password was right, waiting for its second factor (`mfa_token`, kept as its hash).

    It lives `LIFETIME` and ends when the login completes or after
    `MAX_FAILURES` wrong codes. In the database rather than Redis: logins
    keep working while Redis is down.
    """

    LIFETIME_SECONDS = 5 * 60
    MAX_FAILURES = 5

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    failures = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["user", "expires_at"], name="mfa_challenge_user_expiry")]

    def __str__(self) -> str:
        return f"login of {self.user_id} until {self.expires_at:%H:%M:%S}"
