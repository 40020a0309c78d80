"""Writes of the accounts app."""

from __future__ import annotations

from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import User
from accounts.tokens import (
    AMR_CLAIM,
    MFA_AT_CLAIM,
    PASSWORD_CLAIM,
    PASSWORD_ONLY,
    WalletRefreshToken,
    password_stamp,
)
from wallet_project.errors import EmailTaken


def user_create(*, email: str, password: str, name: str) -> User:
    """Register a user; raises EmailTaken when the email is in use, whatever its case."""
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise EmailTaken()
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, name=name)
    except IntegrityError as exc:  # a concurrent registration of the same email won the race
        raise EmailTaken() from exc


def token_pair_issue(*, user: User, amr: tuple[str, ...] = PASSWORD_ONLY, mfa_at: int | None = None) -> dict[str, str]:
    """A new access and refresh token for a user who just proved who they are: by `amr` (RFC 8176 methods),
    the second of them at the Unix time `mfa_at`."""
    refresh = WalletRefreshToken.for_user(user, amr=amr, mfa_at=mfa_at)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def _locked_user(user_id: object) -> User | None:
    """The user row, locked against a concurrent refresh, revocation or password change of the same user."""
    try:
        pk = UUID(str(user_id))
    except ValueError:
        return None
    # FOR NO KEY UPDATE, as the UPDATE of a password takes it: the refreshes and revocations of one user
    # take turns with each other and with a password change, while ledger rows referencing the user
    # (FOR KEY SHARE) are not blocked.
    return User.objects.select_for_update(no_key=True).filter(pk=pk).first()


def user_lock(*, user_id: object) -> User | None:
    """The user row, locked until the transaction ends (None if there is no such user): changes of one user's
    credentials (their password, refresh tokens, second factors) take turns under it."""
    return _locked_user(user_id)


def token_pair_rotate(*, refresh: str) -> dict[str, str]:
    """A new access and refresh token for a refresh token, which is used up; raises AuthenticationFailed for
    one that is rotated out, blacklisted, issued before its user's last password change, expired or
    malformed, or whose user is gone or inactive.

    A refresh token is rotated at most once, even by concurrent requests:
    checking it and blacklisting it happen in the transaction that writes its
    successor, under its user's row lock, so a second refresh of the same
    token finds it blacklisted; and the blacklist's unique constraint on the
    token would refuse a second insert even without the lock.
    """
    try:
        old = WalletRefreshToken(refresh)  # signature, expiry, type, and the blacklist
    except TokenError as exc:
        raise AuthenticationFailed(str(exc)) from exc
    with transaction.atomic():
        user = _locked_user(old.get(jwt_settings.USER_ID_CLAIM))
        if user is None or not user.is_active:
            raise AuthenticationFailed("No active account found for the given token.")
        if not constant_time_compare(str(old.get(PASSWORD_CLAIM, "")), password_stamp(user)):
            raise AuthenticationFailed("This refresh token was revoked by a change of password.")
        outstanding = OutstandingToken.objects.filter(jti=old[jwt_settings.JTI_CLAIM]).first()
        if outstanding is None:
            raise AuthenticationFailed("This refresh token is not known.")
        _, blacklisted_now = BlacklistedToken.objects.get_or_create(token=outstanding)
        if not blacklisted_now:
            raise AuthenticationFailed("Token is blacklisted")
        # The successor says how the user authenticated at login, and when: refreshing is not a second factor.
        new = WalletRefreshToken.for_user(
            user, amr=tuple(old.get(AMR_CLAIM, PASSWORD_ONLY)), mfa_at=old.get(MFA_AT_CLAIM)
        )
    return {"access": str(new.access_token), "refresh": str(new)}


def user_refresh_tokens_revoke(*, user: User) -> int:
    """Blacklist every live refresh token of the user (their access tokens end with their lifetime); how many."""
    with transaction.atomic():
        if _locked_user(user.pk) is None:
            return 0
        live = OutstandingToken.objects.filter(
            user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
        ).values_list("pk", flat=True)
        revoked = BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token_id=pk) for pk in live], ignore_conflicts=True
        )
    return len(revoked)
