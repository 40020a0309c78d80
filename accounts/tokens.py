"""The service's refresh token: simplejwt's, stamped with the password it was issued under.

A refresh token carries `PASSWORD_CLAIM`, an HMAC of the user's password
hash keyed by the JWT signing key. The refresh (`accounts.services.
token_pair_rotate`) compares it with the user's current password, read under
the user's row lock: whatever changes a password — the admin's forms, a
service's `set_password()` and `save()`, `manage.py changepassword`, a
hasher upgrade at login — every refresh token issued before it stops
working, with no hook to forget. The stamp reveals nothing of the password:
it is an HMAC of its salted hash, under a key the client never sees.

Access tokens do not carry the stamp: the per-request authentication reads
no user row (wallet_project/authentication.py), so they could not be checked
cheaply; they end with their short lifetime instead.

Every token also says how its user proved who they are, in claims that
refreshing carries over unchanged (`accounts.services.token_pair_rotate`):
`amr` (RFC 8176's methods: `pwd`, plus `otp` after a second factor) and
`mfa_at`, the Unix time of the second factor. Refreshing keeps the time of the factor, not the
time of the refresh, so a check of its age (mfa/step_up.py) reads it from
the access token alone, with no database round trip.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.crypto import salted_hmac
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.models import User

PASSWORD_CLAIM = "pwd"
# How the user authenticated: copied from a refresh token to its successor, and to its access tokens.
AMR_CLAIM = "amr"
MFA_AT_CLAIM = "mfa_at"
PASSWORD_ONLY = ("pwd",)
WITH_SECOND_FACTOR = ("pwd", "otp")
_STAMP_SALT = "accounts.tokens.password_stamp"


def password_stamp(user: User) -> str:
    """The stamp of the user's current password (changes with every password change)."""
    return salted_hmac(
        _STAMP_SALT, user.password, secret=settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="sha256"
    ).hexdigest()[:32]


class WalletRefreshToken(RefreshToken):
    """A refresh token stamped with its user's password; its access tokens are not."""

    no_copy_claims = (*RefreshToken.no_copy_claims, PASSWORD_CLAIM)

    @classmethod
    def for_user(  # type: ignore[override]
        cls, user: User, *, amr: tuple[str, ...] = PASSWORD_ONLY, mfa_at: int | None = None
    ) -> WalletRefreshToken:
        """A new token for the user, recorded as outstanding (simplejwt's `for_user`, with the stamp and the
        factors in the claims before the record is written). `mfa_at`: when the second factor was given."""
        token = cls()
        token[api_settings.USER_ID_CLAIM] = str(getattr(user, api_settings.USER_ID_FIELD))
        token[PASSWORD_CLAIM] = password_stamp(user)
        token[AMR_CLAIM] = list(amr)
        if mfa_at is not None:
            token[MFA_AT_CLAIM] = mfa_at
        OutstandingToken.objects.create(
            user=user,
            jti=token[api_settings.JTI_CLAIM],
            token=str(token),
            created_at=token.current_time,
            expires_at=datetime_from_epoch(token["exp"]),
        )
        return token
