"""Refresh tokens: a password change, however it is made, revokes them all; each is rotated at most once,
even by concurrent requests; staff can revoke a user's tokens."""

from __future__ import annotations

import threading
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from accounts.services import user_refresh_tokens_revoke
from accounts.tokens import PASSWORD_CLAIM, WalletRefreshToken
from conftest import error_code
from tests.factories import PASSWORD, UserFactory

TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
NEW_PASSWORD = "another-horse-battery-7"


def _login(email: str, password: str = PASSWORD) -> dict[str, str]:
    response = APIClient().post(TOKEN, {"email": email, "password": password}, format="json")
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def _refresh(refresh: str):
    return APIClient().post(REFRESH, {"refresh": refresh}, format="json")


def _assert_revoked(refresh: str) -> None:
    """The refresh is refused, and refusing it wrote no new token."""
    outstanding = OutstandingToken.objects.count()
    response = _refresh(refresh)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"
    assert OutstandingToken.objects.count() == outstanding


# --- a password change revokes every refresh token -----------------------------------------


@pytest.mark.django_db
def test_set_password_and_save_revokes_every_refresh_token_of_the_user():
    user = UserFactory()
    phone, laptop = _login(user.email), _login(user.email)
    bystander = UserFactory()
    bystanders = _login(bystander.email)

    user.set_password(NEW_PASSWORD)
    user.save()

    _assert_revoked(phone["refresh"])
    _assert_revoked(laptop["refresh"])
    assert _refresh(bystanders["refresh"]).status_code == HTTPStatus.OK
    fresh = _login(user.email, NEW_PASSWORD)
    assert _refresh(fresh["refresh"]).status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_a_rotated_refresh_token_is_revoked_by_a_later_password_change_too():
    user = UserFactory()
    rotated = _refresh(_login(user.email)["refresh"]).json()

    user.set_password(NEW_PASSWORD)
    user.save(update_fields=["password"])

    _assert_revoked(rotated["refresh"])


@pytest.mark.django_db
def test_the_admin_password_change_form_revokes_the_users_refresh_tokens(root):
    user = UserFactory()
    pair = _login(user.email)

    response = root.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == HTTPStatus.FOUND, response.content
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    _assert_revoked(pair["refresh"])


@pytest.mark.django_db
def test_the_changepassword_command_revokes_the_users_refresh_tokens(monkeypatch):
    from django.contrib.auth.management.commands import changepassword

    user = UserFactory()
    pair = _login(user.email)
    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": NEW_PASSWORD)

    call_command("changepassword", user.email)

    _assert_revoked(pair["refresh"])
    assert _refresh(_login(user.email, NEW_PASSWORD)["refresh"]).status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_saving_a_user_without_changing_the_password_keeps_the_refresh_tokens():
    user = UserFactory()
    pair = _login(user.email)

    user.name = "Renamed"
    user.save()

    assert _refresh(pair["refresh"]).status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_a_refresh_token_without_the_password_stamp_is_refused():
    user = UserFactory()
    unstamped = RefreshToken.for_user(user)
    assert PASSWORD_CLAIM not in unstamped.payload

    _assert_revoked(str(unstamped))


@pytest.mark.django_db
def test_access_tokens_do_not_carry_the_password_stamp():
    user = UserFactory()
    pair = _login(user.email)

    assert PASSWORD_CLAIM in WalletRefreshToken(pair["refresh"]).payload
    assert PASSWORD_CLAIM not in AccessToken(pair["access"]).payload
    assert _refresh(pair["refresh"]).status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_an_inactive_users_refresh_token_is_refused():
    user = UserFactory()
    pair = _login(user.email)
    User.objects.filter(pk=user.pk).update(is_active=False)

    _assert_revoked(pair["refresh"])


# --- one rotation per refresh token, even under concurrency ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_token_rotate_it_exactly_once():
    user = UserFactory()
    refresh = _login(user.email)["refresh"]
    outstanding_before = OutstandingToken.objects.count()
    threads_count = 8
    start = threading.Barrier(threads_count)
    answers: list = [None] * threads_count

    def attempt(index: int) -> None:
        try:
            start.wait()
            answers[index] = _refresh(refresh)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [HTTPStatus.OK] + [HTTPStatus.UNAUTHORIZED] * (threads_count - 1)
    assert all(error_code(answer) == "authentication_failed" for answer in answers if answer.status_code != 200)
    assert OutstandingToken.objects.count() == outstanding_before + 1
    assert BlacklistedToken.objects.filter(token__jti=RefreshToken(refresh, verify=False)["jti"]).count() == 1
    (winner,) = [answer.json() for answer in answers if answer.status_code == HTTPStatus.OK]
    assert _refresh(winner["refresh"]).status_code == HTTPStatus.OK


# --- revocation by staff ---------------------------------------------------------------------


@pytest.mark.django_db
def test_revoking_a_users_refresh_tokens_blacklists_every_live_one():
    user = UserFactory()
    pairs = [_login(user.email) for _ in range(3)]
    bystander = _login(UserFactory().email)

    revoked = user_refresh_tokens_revoke(user=user)

    assert revoked == 3
    for pair in pairs:
        _assert_revoked(pair["refresh"])
    assert _refresh(bystander["refresh"]).status_code == HTTPStatus.OK
    assert _refresh(_login(user.email)["refresh"]).status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_staff_revoke_a_users_refresh_tokens_from_the_user_admin(root):
    user = UserFactory()
    pair = _login(user.email)

    response = root.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "revoke_refresh_tokens", "_selected_action": [str(user.pk)]},
    )

    assert response.status_code == HTTPStatus.FOUND
    _assert_revoked(pair["refresh"])


@pytest.mark.django_db
def test_the_admin_never_shows_a_refresh_tokens_text(root):
    user = UserFactory()
    pair = _login(user.email)
    outstanding = OutstandingToken.objects.get(jti=WalletRefreshToken(pair["refresh"])["jti"])
    pages = [
        reverse("admin:token_blacklist_outstandingtoken_changelist"),
        reverse("admin:token_blacklist_outstandingtoken_change", args=[outstanding.pk]),
    ]

    for page in pages:
        response = root.get(page)
        assert response.status_code == HTTPStatus.OK
        body = response.content.decode()
        assert outstanding.jti in body
        assert pair["refresh"] not in body
        assert pair["refresh"].split(".")[1] not in body  # not even the payload


@pytest.mark.django_db
def test_staff_blacklist_chosen_refresh_tokens_from_the_outstanding_tokens_admin(root):
    user = UserFactory()
    kept, revoked = _login(user.email), _login(user.email)
    chosen = OutstandingToken.objects.get(jti=WalletRefreshToken(revoked["refresh"])["jti"])

    response = root.post(
        reverse("admin:token_blacklist_outstandingtoken_changelist"),
        {"action": "blacklist_tokens", "_selected_action": [str(chosen.pk)]},
    )

    assert response.status_code == HTTPStatus.FOUND
    _assert_revoked(revoked["refresh"])
    assert _refresh(kept["refresh"]).status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_read_only_support_staff_cannot_revoke_tokens(support):
    user = UserFactory()
    pair = _login(user.email)

    support.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "revoke_refresh_tokens", "_selected_action": [str(user.pk)]},
    )

    assert not BlacklistedToken.objects.exists()
    assert _refresh(pair["refresh"]).status_code == HTTPStatus.OK
