"""Writes of the second factors: enrolling an authenticator app, recovery codes, turning MFA off, the login's
second step, and support's reset.

Every change of one user's second factors runs under that user's row lock
(`accounts.services.user_lock`), so two of them take turns. A code is checked
and used up in the same transaction: a TOTP code under its device's row lock
(two requests with the same code cannot both pass: the second finds the
code's time step recorded), a recovery code by one conditional UPDATE. Each
change that turns MFA on or off writes its event (`user.mfa_enabled`,
`user.mfa_disabled`) in its own transaction and an audit line once it commits.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from accounts.services import token_pair_issue, user_lock
from accounts.tokens import WITH_SECOND_FACTOR
from events import outbox
from events.models import EventType
from mfa import crypto, totp
from mfa.models import LoginChallenge, RecoveryCode, TOTPDevice
from mfa.selectors import OFF, RECOVERY_CODE, TOTP, MfaStatus, mfa_status, secret_hash
from wallet_project.errors import (
    InactiveAccount,
    InvalidInput,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    NotFound,
    SecondFactorRefused,
)
from wallets.models import StaffAction
from wallets.services import staff_action_record

if TYPE_CHECKING:
    from accounts.models import User

audit_logger = logging.getLogger("wallet.audit")

DEVICE_NAME = "Authenticator app"
RECOVERY_CODE_COUNT = 10
# 16 characters of Crockford's base32 (no i, l, o, u): 80 random bits, shown in groups of four.
_RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RECOVERY_LENGTH = 16
_SEPARATORS = re.compile(r"[\s-]+")

WRONG_CODE = "The code is not valid: it is wrong, expired or already used."


class WrongCode(InvalidInput):
    """A code that does not pass the user's second factor, given to change it (400, in `details.code`)."""

    def __init__(self) -> None:
        super().__init__(WRONG_CODE, details={"code": [WRONG_CODE]})


@dataclass(frozen=True)
class Enrolment:
    """A pending authenticator app: the secret to type in, or the URI (and its QR code) to scan."""

    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True)
class Challenge:
    """A login waiting for its second factor: the token to send back with a code, and the methods that pass."""

    mfa_token: str
    methods: list[str]


def normalised_code(code: str) -> str:
    """A code as typed, without spaces or dashes, in lower case: `123 456`, `ABCD-EFGH-…` are accepted."""
    return _SEPARATORS.sub("", code).lower()


# --- enrolment ----------------------------------------------------------------------------------


def totp_enrolment_start(*, user: User) -> Enrolment:
    """A new secret for the user's authenticator app, pending until a first code confirms it (it replaces a
    pending one). Raises InactiveAccount, MfaAlreadyEnabled."""
    secret = totp.new_secret()
    with transaction.atomic():
        account = _locked_active(user)
        device = TOTPDevice.objects.filter(user_id=account.pk).first()
        if device is not None and device.confirmed:
            raise MfaAlreadyEnabled()
        if device is None:
            device = TOTPDevice(user_id=account.pk, name=DEVICE_NAME, confirmed=False)
        device.secret = secret
        device.last_t = -1
        device.created_at = timezone.now()
        device.save()
    uri = totp.provisioning_uri(secret, account.email)
    return Enrolment(secret=totp.secret_base32(secret), otpauth_uri=uri, qr_svg=totp.qr_svg(uri))


def totp_enrolment_confirm(*, user: User, code: str) -> list[str]:
    """Confirm the pending authenticator app with a code it shows: MFA is on, and the user's ten recovery codes
    are returned, once (only their hashes are kept). The code is used up: it cannot log in again.

    Raises InactiveAccount, NotFound (nothing pending), MfaAlreadyEnabled, WrongCode.
    """
    now = time.time()
    with transaction.atomic():
        account = _locked_active(user)
        device = TOTPDevice.objects.filter(user_id=account.pk).first()
        if device is None:
            raise NotFound("No authenticator app is waiting for confirmation: start with POST /api/v1/auth/mfa/totp/.")
        if device.confirmed:
            raise MfaAlreadyEnabled()
        step = totp.matching_step(device.secret, normalised_code(code), after=device.last_t, now=now)
        if step is None:
            raise WrongCode()
        moment = _moment(now)
        device.confirmed, device.confirmed_at, device.last_used_at, device.last_t = True, moment, moment, step
        device.save(update_fields=["confirmed", "confirmed_at", "last_used_at", "last_t"])
        codes = _new_recovery_codes(account)
        _told(account, EventType.USER_MFA_ENABLED, mfa_status(user_id=account.pk))
    _audit_on_commit("mfa enabled", account)
    return codes


def recovery_codes_regenerate(*, user: User, code: str) -> list[str]:
    """Ten new recovery codes in place of the old ones, given a code (TOTP or recovery). Raises InactiveAccount,
    MfaNotEnabled, WrongCode."""
    with transaction.atomic():
        account = _locked_active(user)
        _ensure_enabled(account)
        if _second_factor(account, code, time.time()) is None:
            raise WrongCode()
        codes = _new_recovery_codes(account)
    _audit_on_commit("mfa recovery codes replaced", account)
    return codes


def mfa_disable(*, user: User, code: str) -> None:
    """Turn the user's second factor off, given a code (TOTP or recovery): the app's secret, the recovery codes
    and any login waiting for a code are gone. Raises InactiveAccount, MfaNotEnabled, WrongCode."""
    with transaction.atomic():
        account = _locked_active(user)
        _ensure_enabled(account)
        if _second_factor(account, code, time.time()) is None:
            raise WrongCode()
        _remove_factors(account)
        _told(account, EventType.USER_MFA_DISABLED, OFF)
    _audit_on_commit("mfa disabled", account)


def mfa_reset(*, user: User, staff: User | None, reason: str) -> bool:
    """Turn a user's second factor off for them (support, when the app and the recovery codes are lost): as
    `mfa_disable`, without a code. `staff` is who did it, recorded with `reason` in the staff-action history;
    None from a shell (`manage.py reset_mfa`). Whether there was anything to reset."""
    with transaction.atomic():
        account = user_lock(user_id=user.pk)
        if account is None:
            raise NotFound("No such user.")
        was = mfa_status(user_id=account.pk)
        removed = _remove_factors(account)
        if was.enabled:
            _told(account, EventType.USER_MFA_DISABLED, OFF)
        if removed and staff is not None:
            staff_action_record(
                staff=staff,
                action=StaffAction.Action.MFA_RESET,
                target=account,
                reason=reason,
                details={"was_enabled": was.enabled, "recovery_codes_left": was.recovery_codes_left},
            )
    if removed:
        _audit_on_commit("mfa reset", account, staff=str(staff.pk) if staff is not None else "shell", reason=reason)
    return removed


# --- the login's second step ----------------------------------------------------------------------


def login_challenge_start(*, user: User) -> Challenge | None:
    """After a right password: None when the user has no second factor (the password is enough), else a new
    login waiting for a code, bound to the user, for `LoginChallenge.LIFETIME_SECONDS`."""
    status = mfa_status(user_id=user.pk)
    if not status.enabled:
        return None
    mfa_token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        LoginChallenge.objects.filter(user_id=user.pk, expires_at__lte=now).delete()  # the user's dead ones
        LoginChallenge.objects.create(
            user_id=user.pk,
            token_hash=secret_hash(mfa_token),
            created_at=now,
            expires_at=now + timedelta(seconds=LoginChallenge.LIFETIME_SECONDS),
        )
    return Challenge(mfa_token=mfa_token, methods=status.methods)


def login_challenge_complete(*, mfa_token: str, code: str) -> dict[str, str]:
    """The token pair of a login whose code passes (a TOTP code, or a recovery code); the tokens carry the
    factor (`amr`) and its time (`mfa_at`). The `mfa_token` is used up by a success, and by its fifth wrong
    code. Raises SecondFactorRefused: a wrong or used code, or an `mfa_token` unknown, expired or used up.
    """
    now = time.time()
    refused: str | None = None
    method: str | None = None
    with transaction.atomic():
        challenge = (
            LoginChallenge.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(token_hash=secret_hash(mfa_token), expires_at__gt=_moment(now))
            .first()
        )
        if challenge is None or not challenge.user.is_active:
            raise SecondFactorRefused(
                "This mfa_token is not valid: it is unknown, expired or used up. Log in again with your password."
            )
        method = _second_factor(challenge.user, code, now)
        if method is None:
            challenge.failures += 1
            left = LoginChallenge.MAX_FAILURES - challenge.failures
            if left <= 0:
                challenge.delete()
                refused = WRONG_CODE + " This mfa_token is used up: log in again with your password."
            else:
                challenge.save(update_fields=["failures"])
                refused = WRONG_CODE + f" {left} more attempt(s) with this mfa_token."
        else:
            challenge.delete()
            tokens = token_pair_issue(user=challenge.user, amr=WITH_SECOND_FACTOR, mfa_at=int(now))
    if refused is not None:  # the count of wrong codes is committed first
        raise SecondFactorRefused(refused)
    if method == RECOVERY_CODE:
        _audit_on_commit("mfa recovery code used", challenge.user)
    return tokens


# --- the admin's second step ----------------------------------------------------------------------


def second_factor_check(*, user: User, code: str) -> TOTPDevice | None:
    """The user's authenticator app if `code` passes their second factor (using it up), else None: the
    admin's second step, which marks its session with the device (django-otp's `login`)."""
    with transaction.atomic():
        method = _second_factor(user, code, time.time())
        device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).first() if method else None
    if method == RECOVERY_CODE:
        _audit_on_commit("mfa recovery code used", user)
    return device


def totp_enrolment_pending(*, user: User) -> tuple[TOTPDevice, Enrolment] | None:
    """The user's pending authenticator app and how to add it, made if there is none and kept otherwise (so
    that the admin's enrolment page shows the same QR code when reloaded); None once MFA is on."""
    device = TOTPDevice.objects.filter(user_id=user.pk).first()
    if device is None:
        totp_enrolment_start(user=user)
        device = TOTPDevice.objects.get(user_id=user.pk)
    if device.confirmed:
        return None
    secret = device.secret
    uri = totp.provisioning_uri(secret, user.email)
    return device, Enrolment(secret=totp.secret_base32(secret), otpauth_uri=uri, qr_svg=totp.qr_svg(uri))


# --- the key -------------------------------------------------------------------------------------
def secrets_reencrypt() -> int:
    """Encrypt every stored TOTP secret with the first key of MFA_ENCRYPTION_KEY; how many (`rotate_mfa_key`)."""
    count = 0
    for device_id in TOTPDevice.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            device = TOTPDevice.objects.select_for_update().filter(pk=device_id).first()
            if device is None:
                continue
            device.encrypted_secret = crypto.reencrypt(device.encrypted_secret)
            device.save(update_fields=["encrypted_secret"])
            count += 1
    return count


# --- the pieces ---------------------------------------------------------------------------------


def _locked_active(user: User) -> User:
    account = user_lock(user_id=user.pk)
    if account is None or not account.is_active:
        raise InactiveAccount()
    return account


def _ensure_enabled(account: User) -> None:
    if not TOTPDevice.objects.filter(user_id=account.pk, confirmed=True).exists():
        raise MfaNotEnabled()


def _second_factor(user: User, code: str, now: float) -> str | None:
    """Inside a transaction: the method `code` passes for the user (TOTP or RECOVERY_CODE), using the code up,
    or None."""
    code = normalised_code(code)
    if totp.is_totp_code(code):
        # The row lock makes a second request with the same code wait, then find its step recorded.
        device = TOTPDevice.objects.select_for_update().filter(user_id=user.pk, confirmed=True).first()
        if device is None:
            return None
        step = totp.matching_step(device.secret, code, after=device.last_t, now=now)
        if step is None:
            return None
        device.last_t, device.last_used_at = step, _moment(now)
        device.save(update_fields=["last_t", "last_used_at"])
        return TOTP
    if len(code) != _RECOVERY_LENGTH:
        return None
    used = RecoveryCode.objects.filter(user_id=user.pk, code_hash=secret_hash(code), used_at__isnull=True).update(
        used_at=_moment(now)
    )
    return RECOVERY_CODE if used else None


def _new_recovery_codes(account: User) -> list[str]:
    """Ten new recovery codes in place of the user's others; the codes as shown (only their hashes are kept)."""
    RecoveryCode.objects.filter(user_id=account.pk).delete()
    codes = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH)) for _ in range(RECOVERY_CODE_COUNT)
    ]
    RecoveryCode.objects.bulk_create(RecoveryCode(user_id=account.pk, code_hash=secret_hash(code)) for code in codes)
    return ["-".join(code[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4)) for code in codes]


def _remove_factors(account: User) -> bool:
    """Delete the user's device, recovery codes and logins waiting for a code; whether there was any."""
    removed = 0
    for model in (TOTPDevice, RecoveryCode, LoginChallenge):
        deleted, _ = model.objects.filter(user_id=account.pk).delete()
        removed += deleted
    return removed > 0


def _told(account: User, kind: EventType, status: MfaStatus) -> None:
    outbox.record(kind, user_id=account.pk, data=status.as_data())


def _moment(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=UTC)


def _audit_on_commit(message: str, account: User, **extra: str) -> None:
    line = {"user_id": str(account.pk), **extra}
    transaction.on_commit(lambda: audit_logger.info(message, extra=line))
