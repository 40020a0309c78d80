"""Reads of the second factors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from mfa.models import LoginChallenge, RecoveryCode, TOTPDevice

if TYPE_CHECKING:
    from accounts.models import User

TOTP = "totp"
RECOVERY_CODE = "recovery_code"


@dataclass(frozen=True)
class MfaStatus:
    """Whether a user's second factor is on, the methods that pass it, and how many recovery codes are unused."""

    enabled: bool
    methods: list[str] = field(default_factory=list)
    recovery_codes_left: int = 0

    def as_data(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "methods": self.methods, "recovery_codes_left": self.recovery_codes_left}


OFF = MfaStatus(enabled=False)


def secret_hash(value: str) -> str:
    """How a recovery code or a login token is kept: random values of 80 bits or more need no salt."""
    return hashlib.sha256(value.encode()).hexdigest()


def mfa_status(*, user_id: UUID) -> MfaStatus:
    """The user's second factor, in one query: on once an authenticator app is confirmed."""
    unused = (
        RecoveryCode.objects.filter(user_id=OuterRef("user_id"), used_at__isnull=True)
        .order_by()
        .values("user_id")
        .annotate(count=Count("pk"))
        .values("count")[:1]
    )
    codes_left = (
        TOTPDevice.objects.filter(user_id=user_id, confirmed=True)
        .annotate(codes_left=Coalesce(Subquery(unused), 0))
        .values_list("codes_left", flat=True)
        .first()
    )
    if codes_left is None:
        return OFF
    return MfaStatus(
        enabled=True, methods=[TOTP, RECOVERY_CODE] if codes_left else [TOTP], recovery_codes_left=codes_left
    )


def mfa_enrolled(*, user_id: UUID) -> bool:
    """Whether the user has a confirmed authenticator app."""
    return TOTPDevice.objects.filter(user_id=user_id, confirmed=True).exists()


def login_challenge_user(*, mfa_token: str) -> User | None:
    """The user of a login waiting for its second factor, if `mfa_token` is one that still lives."""
    challenge = (
        LoginChallenge.objects.select_related("user")
        .filter(token_hash=secret_hash(mfa_token), expires_at__gt=timezone.now())
        .first()
    )
    return None if challenge is None else challenge.user
