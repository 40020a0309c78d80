"""Adding an authenticator app, recovery codes, and turning two-factor authentication off, over the API."""

from __future__ import annotations

import base64
import time
from http import HTTPStatus
from typing import Any

import pyotp
import pytest
from django.db import connection

from conftest import client_for, error_code
from events.models import Event
from mfa.models import LoginChallenge, RecoveryCode, TOTPDevice
from tests.factories import UserFactory
from tests.second_factor import STEP, App, enrolled, password_step

pytestmark = pytest.mark.django_db

STATUS = "/api/v1/auth/mfa/"
TOTP = "/api/v1/auth/mfa/totp/"
CONFIRM = "/api/v1/auth/mfa/totp/confirm/"
RECOVERY = "/api/v1/auth/mfa/recovery-codes/"


def _events(user: Any) -> list[tuple[str, dict]]:
    return [(event.type, event.data) for event in Event.objects.filter(user=user).order_by("sequence")]


def test_enrolment_answers_a_secret_its_uri_and_a_qr_code_and_changes_nothing_yet(user, api):
    response = api.post(TOTP)

    assert response.status_code == HTTPStatus.CREATED, response.content
    body = response.json()
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    app = pyotp.parse_uri(body["otpauth_uri"])
    assert app.secret == body["secret"]
    assert app.issuer == "Wallet" and app.name == user.email
    assert body["qr_svg"].startswith("<svg") and "<path" in body["qr_svg"]
    # Pending: logging in still needs the password only, and the status says off.
    assert api.get(STATUS).json() == {"enabled": False, "methods": [], "recovery_codes_left": 0}
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed is False
    assert _events(user) == []


def test_a_code_from_the_app_confirms_it_and_answers_ten_recovery_codes_once(user, api):
    app = pyotp.TOTP(api.post(TOTP).json()["secret"])

    response = api.post(CONFIRM, {"code": app.now()}, format="json")

    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    codes = body.pop("recovery_codes")
    assert body == {"enabled": True, "methods": ["totp", "recovery_code"], "recovery_codes_left": 10}
    assert len(codes) == len(set(codes)) == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)
    assert api.get(STATUS).json() == body
    # Only hashes are kept: no code appears in the table.
    stored = list(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True))
    assert len(stored) == 10 and not {code.replace("-", "") for code in codes} & set(stored)
    assert _events(user) == [("user.mfa_enabled", body)]


def test_confirming_with_a_wrong_code_is_a_validation_error_and_changes_nothing(user, api):
    app = pyotp.TOTP(api.post(TOTP).json()["secret"])
    wrong = app.at(time.time() + 10 * STEP)

    response = api.post(CONFIRM, {"code": wrong}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "code" in response.json()["error"]["details"]
    assert TOTPDevice.objects.get(user=user).confirmed is False
    assert not RecoveryCode.objects.filter(user=user).exists()
    assert _events(user) == []


def test_starting_again_replaces_the_pending_secret(user, api):
    first = pyotp.TOTP(api.post(TOTP).json()["secret"])
    second = pyotp.TOTP(api.post(TOTP).json()["secret"])

    assert first.secret != second.secret
    assert TOTPDevice.objects.filter(user=user).count() == 1
    assert api.post(CONFIRM, {"code": first.now()}, format="json").status_code == HTTPStatus.BAD_REQUEST
    assert api.post(CONFIRM, {"code": second.now()}, format="json").status_code == HTTPStatus.OK


def test_confirming_with_nothing_pending_is_not_found(api):
    response = api.post(CONFIRM, {"code": "123456"}, format="json")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


def test_enrolling_again_while_on_is_a_conflict(user, api):
    enrolled(user)

    for path, body in ((TOTP, None), (CONFIRM, {"code": "123456"})):
        response = api.post(path, body, format="json")
        assert response.status_code == HTTPStatus.CONFLICT, path
        assert error_code(response) == "mfa_already_enabled"


def test_the_secret_cannot_be_read_from_the_table(user, api):
    secret = api.post(TOTP).json()["secret"]
    hex_secret = base64.b32decode(secret).hex()

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mfa_totpdevice WHERE user_id = %s", [user.pk])
        row = " ".join(str(value) for value in cursor.fetchone())

    assert secret not in row and secret.lower() not in row
    assert hex_secret not in row and hex_secret.upper() not in row
    assert TOTPDevice.objects.get(user=user).encrypted_secret.startswith("gAAAAA")  # a Fernet token


def test_a_secret_altered_in_the_table_does_not_decrypt(user, api):
    api.post(TOTP)
    device = TOTPDevice.objects.get(user=user)
    TOTPDevice.objects.filter(pk=device.pk).update(encrypted_secret=device.encrypted_secret[:-4] + "AAAA")

    from cryptography.fernet import InvalidToken

    with pytest.raises(InvalidToken):
        TOTPDevice.objects.get(pk=device.pk).secret


def test_new_recovery_codes_replace_the_old_ones(user, api):
    app = enrolled(user)

    response = api.post(RECOVERY, {"code": app.unused_code()}, format="json")

    assert response.status_code == HTTPStatus.OK, response.content
    new_codes = response.json()["recovery_codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(app.recovery_codes)
    assert response.json()["recovery_codes_left"] == 10
    assert api.post(RECOVERY, {"code": app.recovery_codes[0]}, format="json").status_code == HTTPStatus.BAD_REQUEST
    assert api.post(RECOVERY, {"code": new_codes[0]}, format="json").status_code == HTTPStatus.OK


def test_turning_off_needs_a_code_then_the_password_alone_logs_in(user, api):
    app = enrolled(user)
    password_step(api, user)  # a login waiting for its code: it goes too

    wrong = api.delete(TOTP, {"code": app.totp.at(time.time() + 10 * STEP)}, format="json")
    assert wrong.status_code == HTTPStatus.BAD_REQUEST
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()

    response = api.delete(TOTP, {"code": app.unused_code()}, format="json")

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json() == {"enabled": False, "methods": [], "recovery_codes_left": 0}
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    assert not LoginChallenge.objects.filter(user=user).exists()
    assert [kind for kind, _ in _events(user)] == ["user.mfa_enabled", "user.mfa_disabled"]
    assert _events(user)[-1][1] == {"enabled": False, "methods": [], "recovery_codes_left": 0}
    login = client_for().post("/api/v1/auth/token/", {"email": user.email, "password": "correct-horse-battery-9"})
    assert set(login.json()) == {"access", "refresh"}


def test_a_recovery_code_turns_it_off_too(user, api):
    app: App = enrolled(user)

    response = api.delete(TOTP, {"code": app.recovery_codes[3].upper()}, format="json")

    assert response.status_code == HTTPStatus.OK, response.content
    assert not TOTPDevice.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("method", "path"), [("delete", TOTP), ("post", RECOVERY)], ids=["turn off", "new recovery codes"]
)
def test_with_mfa_off_there_is_nothing_to_turn_off_or_renew(api, method, path):
    response = getattr(api, method)(path, {"code": "123456"}, format="json")

    assert response.status_code == HTTPStatus.CONFLICT
    assert error_code(response) == "mfa_not_enabled"


@pytest.mark.parametrize(
    ("method", "path"), [("delete", TOTP), ("post", RECOVERY)], ids=["turn off", "new recovery codes"]
)
def test_wrong_codes_to_change_the_second_factor_count_as_failed_logins(settings, user, api, method, path):
    settings.THROTTLE_LOGIN_RATE = "3/minute"
    app = enrolled(user)
    wrong = app.totp.at(time.time() + 10 * STEP)

    statuses = [getattr(api, method)(path, {"code": wrong}, format="json").status_code for _ in range(3)]
    refused = getattr(api, method)(path, {"code": app.unused_code()}, format="json")

    assert statuses == [HTTPStatus.BAD_REQUEST] * 3
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert error_code(refused) == "throttled"
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@pytest.mark.parametrize("code", ["", "12", "x" * 40, "12345!", None, ["123456"]])
def test_a_malformed_code_is_a_validation_error(api, code):
    response = api.post(CONFIRM, {"code": code}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"


def test_every_endpoint_needs_an_access_token():
    anonymous = client_for()
    for method, path in (("get", STATUS), ("post", TOTP), ("delete", TOTP), ("post", CONFIRM), ("post", RECOVERY)):
        response = getattr(anonymous, method)(path, {"code": "123456"}, format="json")
        assert response.status_code == HTTPStatus.UNAUTHORIZED, (method, path)


def test_a_deactivated_account_cannot_enrol():
    user = UserFactory()
    api = client_for(user)
    user.is_active = False
    user.save()

    response = api.post(TOTP)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert not TOTPDevice.objects.filter(user=user).exists()
