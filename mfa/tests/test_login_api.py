"""Logging in with a second factor: the password step answers a challenge, the code step answers the tokens."""

from __future__ import annotations

import time
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from conftest import error_code
from mfa.models import LoginChallenge, RecoveryCode, TOTPDevice
from mfa.services import login_challenge_complete
from tests.factories import PASSWORD, UserFactory
from tests.invariants import run_in_threads
from tests.second_factor import STEP, bearer_client, enrolled, logged_in_with_code, password_step
from wallet_project.errors import SecondFactorRefused

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
MFA = "/api/v1/auth/token/mfa/"
REFRESH = "/api/v1/auth/token/refresh/"


def _second_step(client: APIClient, mfa_token: str, code: str):
    return client.post(MFA, {"mfa_token": mfa_token, "code": code}, format="json")


def _wrong(app) -> str:
    return app.totp.at(time.time() + 10 * STEP)


def test_without_a_second_factor_the_password_answers_the_tokens_with_the_password_as_their_factor(user):
    response = APIClient().post(TOKEN, {"email": user.email, "password": PASSWORD}, format="json")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"access", "refresh"}
    access = AccessToken(body["access"])
    assert access["amr"] == ["pwd"] and "mfa_at" not in access


def test_with_a_second_factor_the_password_answers_a_challenge_and_no_tokens(user):
    enrolled(user)
    outstanding = OutstandingToken.objects.count()

    response = APIClient().post(TOKEN, {"email": user.email, "password": PASSWORD}, format="json")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"mfa_required", "mfa_token", "methods"}
    assert body["mfa_required"] is True
    assert body["methods"] == ["totp", "recovery_code"]
    assert OutstandingToken.objects.count() == outstanding  # no refresh token was issued
    challenge = LoginChallenge.objects.get(user=user)
    assert body["mfa_token"] not in challenge.token_hash  # kept as its hash
    assert timedelta(minutes=4) < challenge.expires_at - timezone.now() <= timedelta(minutes=5)


def test_a_wrong_password_is_refused_before_any_second_step(user):
    enrolled(user)

    response = APIClient().post(TOKEN, {"email": user.email, "password": "wrong-" + PASSWORD}, format="json")

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert not LoginChallenge.objects.exists()


def test_the_code_step_answers_tokens_that_carry_the_factor_and_its_time(user):
    app = enrolled(user)
    client = APIClient()
    challenge = password_step(client, user)
    before = int(time.time())

    response = _second_step(client, challenge["mfa_token"], app.unused_code())

    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert set(body) == {"access", "refresh"}
    for token in (AccessToken(body["access"]), RefreshToken(body["refresh"])):
        assert token["amr"] == ["pwd", "otp"]
        assert before <= token["mfa_at"] <= int(time.time())
        assert token["user_id"] == str(user.pk)
    assert bearer_client(body["access"]).get("/api/v1/auth/me/").json()["email"] == user.email
    assert not LoginChallenge.objects.filter(user=user).exists()  # used up


def test_a_wrong_code_is_refused_and_the_same_mfa_token_still_takes_the_right_one(user):
    app = enrolled(user)
    client = APIClient()
    challenge = password_step(client, user)

    wrong = _second_step(client, challenge["mfa_token"], _wrong(app))
    right = _second_step(client, challenge["mfa_token"], app.unused_code())

    assert wrong.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(wrong) == "authentication_failed"
    assert "4 more attempt" in wrong.json()["error"]["message"]
    assert right.status_code == HTTPStatus.OK


def test_a_code_used_once_is_refused_even_inside_its_window(user):
    app = enrolled(user)
    code = app.unused_code()
    logged_in_with_code(user, app, code=code)
    client = APIClient()
    challenge = password_step(client, user)

    replayed = _second_step(client, challenge["mfa_token"], code)
    recovered = _second_step(client, challenge["mfa_token"], app.recovery_codes[0])

    assert replayed.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(replayed) == "authentication_failed"
    assert recovered.status_code == HTTPStatus.OK  # the refusal was the code's, not the login's


def test_two_logins_with_the_same_code_at_once_let_exactly_one_in(transactional_db):
    user = UserFactory()
    app = enrolled(user)
    code = app.unused_code()
    tokens = [password_step(APIClient(), user)["mfa_token"] for _ in range(4)]

    outcomes = run_in_threads(lambda index: login_challenge_complete(mfa_token=tokens[index], code=code), 4)

    passed = [outcome for outcome in outcomes if outcome.error is None]
    refused = [outcome for outcome in outcomes if isinstance(outcome.error, SecondFactorRefused)]
    assert (len(passed), len(refused)) == (1, 3), [outcome.error for outcome in outcomes]


def test_an_mfa_token_is_used_up_by_a_successful_login(user):
    app = enrolled(user)
    client = APIClient()
    challenge = password_step(client, user)
    assert _second_step(client, challenge["mfa_token"], app.unused_code()).status_code == HTTPStatus.OK

    reused = _second_step(client, challenge["mfa_token"], app.recovery_codes[0])

    assert reused.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(reused) == "authentication_failed"
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=True).count() == 10  # not spent on it


def test_an_mfa_token_expires_after_five_minutes(user):
    app = enrolled(user)
    client = APIClient()
    challenge = password_step(client, user)
    # As if five minutes had gone by.
    LoginChallenge.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = _second_step(client, challenge["mfa_token"], app.unused_code())

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert "expired" in response.json()["error"]["message"]
    assert TOTPDevice.objects.get(user=user).last_t < app.used_step  # the code was not spent


def test_an_mfa_token_dies_after_five_wrong_codes(user):
    app = enrolled(user)
    client = APIClient()
    challenge = password_step(client, user)

    wrong = [_second_step(client, challenge["mfa_token"], _wrong(app)).status_code for _ in range(5)]
    after = _second_step(client, challenge["mfa_token"], app.unused_code())

    assert wrong == [HTTPStatus.UNAUTHORIZED] * 5
    assert after.status_code == HTTPStatus.UNAUTHORIZED
    assert not LoginChallenge.objects.filter(user=user).exists()
    # The code was not spent on the dead token: a new login takes it.
    assert (
        _second_step(client, password_step(client, user)["mfa_token"], app.totp.at(app.used_step * STEP)).status_code
        == 200
    )


def test_an_mfa_token_is_bound_to_its_user(user, other_user):
    enrolled(user)
    other_app = enrolled(other_user)
    challenge = password_step(APIClient(), user)

    response = _second_step(APIClient(), challenge["mfa_token"], other_app.unused_code())

    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_an_unknown_mfa_token_is_refused(user):
    app = enrolled(user)

    response = _second_step(APIClient(), "not-a-token", app.unused_code())

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


def test_a_recovery_code_logs_in_once(user):
    app = enrolled(user)
    code = app.recovery_codes[0]

    first = logged_in_with_code(user, app, code=code.upper().replace("-", " "))
    client = APIClient()
    again = _second_step(client, password_step(client, user)["mfa_token"], code)

    assert AccessToken(first["access"])["amr"] == ["pwd", "otp"]
    assert again.status_code == HTTPStatus.UNAUTHORIZED
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=True).count() == 9
    status = bearer_client(first["access"]).get("/api/v1/auth/mfa/").json()
    assert status == {"enabled": True, "methods": ["totp", "recovery_code"], "recovery_codes_left": 9}


def test_with_every_recovery_code_used_the_methods_say_totp_only(user):
    app = enrolled(user)
    RecoveryCode.objects.filter(user=user).update(used_at=timezone.now())

    assert password_step(APIClient(), user)["methods"] == ["totp"]
    assert logged_in_with_code(user, app)["access"]


def test_wrong_codes_count_toward_the_failed_login_throttle(settings, user):
    settings.THROTTLE_LOGIN_RATE = "3/minute"
    app = enrolled(user)
    client = APIClient()
    statuses = []
    for _ in range(3):
        statuses.append(_second_step(client, password_step(client, user)["mfa_token"], _wrong(app)).status_code)

    # The pair is throttled now: the right password, and then a right code, are refused before being checked.
    password = client.post(TOKEN, {"email": user.email, "password": PASSWORD}, format="json")

    assert statuses == [HTTPStatus.UNAUTHORIZED] * 3
    assert password.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert error_code(password) == "throttled"


def test_a_right_code_is_not_checked_while_the_pair_is_throttled(settings, user):
    settings.THROTTLE_LOGIN_RATE = "2/minute"
    app = enrolled(user)
    client = APIClient()
    challenge = password_step(client, user)
    for _ in range(2):
        _second_step(client, challenge["mfa_token"], _wrong(app))

    response = _second_step(client, challenge["mfa_token"], app.unused_code())

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert LoginChallenge.objects.filter(user=user).exists()


def test_refreshing_keeps_the_time_of_the_factor_not_the_time_of_the_refresh(user):
    app = enrolled(user)
    tokens = logged_in_with_code(user, app)
    factor_at = AccessToken(tokens["access"])["mfa_at"]

    refreshed = APIClient().post(REFRESH, {"refresh": tokens["refresh"]}, format="json").json()
    again = APIClient().post(REFRESH, {"refresh": refreshed["refresh"]}, format="json").json()

    for body in (refreshed, again):
        for token in (AccessToken(body["access"]), RefreshToken(body["refresh"], verify=False)):
            assert token["mfa_at"] == factor_at
            assert token["amr"] == ["pwd", "otp"]


def test_refreshing_a_password_only_login_adds_no_factor(user):
    tokens = APIClient().post(TOKEN, {"email": user.email, "password": PASSWORD}, format="json").json()

    refreshed = APIClient().post(REFRESH, {"refresh": tokens["refresh"]}, format="json").json()

    access = AccessToken(refreshed["access"])
    assert access["amr"] == ["pwd"] and "mfa_at" not in access


def test_a_deactivated_user_cannot_finish_the_second_step(user):
    app = enrolled(user)
    client = APIClient()
    challenge = password_step(client, user)
    user.is_active = False
    user.save()

    response = _second_step(client, challenge["mfa_token"], app.unused_code())

    assert response.status_code == HTTPStatus.UNAUTHORIZED
