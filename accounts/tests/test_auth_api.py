"""The authentication endpoints of API.md: register, token, refresh (with rotation), logout, me."""

from __future__ import annotations

from datetime import UTC, timedelta
from http import HTTPStatus

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from conftest import client_for, error_code
from tests.factories import PASSWORD, UserFactory

REGISTER = "/api/v1/auth/register/"
TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"
ME = "/api/v1/auth/me/"

STRONG_PASSWORD = "violet-tangerine-47-harbour"


def token_pair(client: APIClient, *, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post(TOKEN, {"email": email, "password": password})
    assert response.status_code == HTTPStatus.OK, response.json()
    return response.json()


# --- register ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_register_creates_a_user_and_answers_id_email_and_name(anon_client):
    response = anon_client.post(REGISTER, {"email": "ann@example.com", "password": STRONG_PASSWORD, "name": "Ann"})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert set(body) == {"id", "email", "name"}
    assert body["email"] == "ann@example.com"
    assert body["name"] == "Ann"
    user = User.objects.get(pk=body["id"])
    assert user.check_password(STRONG_PASSWORD)
    assert not user.is_staff


@pytest.mark.django_db
def test_register_stores_the_email_in_lower_case(anon_client):
    response = anon_client.post(REGISTER, {"email": "Ann@Example.COM", "password": STRONG_PASSWORD, "name": "Ann"})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert response.json()["email"] == "ann@example.com"


@pytest.mark.django_db
def test_register_refuses_an_email_taken_in_another_case_with_409(anon_client):
    UserFactory(email="ann@example.com")

    response = anon_client.post(REGISTER, {"email": "ANN@example.com", "password": STRONG_PASSWORD, "name": "Ann"})

    assert response.status_code == HTTPStatus.CONFLICT
    assert error_code(response) == "email_taken"
    assert User.objects.filter(email__iexact="ann@example.com").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["short1", "password123", "12345678901234", "ann@example.com"])
def test_register_runs_the_password_validators(anon_client, password):
    response = anon_client.post(REGISTER, {"email": "ann@example.com", "password": password, "name": "Ann"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"]["password"]
    assert not User.objects.filter(email="ann@example.com").exists()


@pytest.mark.django_db
def test_register_names_every_missing_field(anon_client):
    response = anon_client.post(REGISTER, {})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert set(response.json()["error"]["details"]) == {"email", "password", "name"}


@pytest.mark.django_db
def test_register_refuses_an_invalid_email(anon_client):
    response = anon_client.post(REGISTER, {"email": "not-an-email", "password": STRONG_PASSWORD, "name": "Ann"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "email" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_register_needs_no_authentication_even_with_a_bad_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = client.post(REGISTER, {"email": "ann@example.com", "password": STRONG_PASSWORD, "name": "Ann"})

    assert response.status_code == HTTPStatus.CREATED, response.json()


# --- token -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_token_answers_an_access_and_a_refresh_token(anon_client, user):
    response = anon_client.post(TOKEN, {"email": user.email, "password": PASSWORD})

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert str(AccessToken(body["access"])["user_id"]) == str(user.pk)
    assert str(RefreshToken(body["refresh"])["user_id"]) == str(user.pk)


@pytest.mark.django_db
def test_token_login_is_case_insensitive_on_the_email(anon_client, user):
    response = anon_client.post(TOKEN, {"email": user.email.upper(), "password": PASSWORD})

    assert response.status_code == HTTPStatus.OK, response.json()


@pytest.mark.django_db
def test_token_refuses_a_wrong_password_with_401_authentication_failed(anon_client, user):
    response = anon_client.post(TOKEN, {"email": user.email, "password": "wrong-password-123"})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"
    assert "access" not in response.json()


@pytest.mark.django_db
def test_token_refuses_an_unknown_email_with_401_authentication_failed(anon_client):
    response = anon_client.post(TOKEN, {"email": "nobody@example.com", "password": PASSWORD})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_token_refuses_an_inactive_user(anon_client):
    inactive = UserFactory(is_active=False)

    response = anon_client.post(TOKEN, {"email": inactive.email, "password": PASSWORD})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_token_names_missing_fields_with_400(anon_client):
    response = anon_client.post(TOKEN, {"email": "ann@example.com"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "password" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_an_access_token_from_the_token_endpoint_authenticates_me(anon_client, user):
    pair = token_pair(anon_client, email=user.email)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")

    response = client.get(ME)

    assert response.status_code == HTTPStatus.OK
    assert response.json()["id"] == str(user.pk)


# --- refresh ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_refresh_rotates_the_refresh_token(anon_client, user):
    pair = token_pair(anon_client, email=user.email)

    response = anon_client.post(REFRESH, {"refresh": pair["refresh"]})

    assert response.status_code == HTTPStatus.OK, response.json()
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != pair["refresh"]
    assert str(AccessToken(body["access"])["user_id"]) == str(user.pk)


@pytest.mark.django_db
def test_a_refresh_token_that_was_rotated_out_answers_401_authentication_failed(anon_client, user):
    pair = token_pair(anon_client, email=user.email)
    assert anon_client.post(REFRESH, {"refresh": pair["refresh"]}).status_code == HTTPStatus.OK

    response = anon_client.post(REFRESH, {"refresh": pair["refresh"]})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_the_rotated_refresh_token_works_once_in_turn(anon_client, user):
    pair = token_pair(anon_client, email=user.email)
    second = anon_client.post(REFRESH, {"refresh": pair["refresh"]}).json()["refresh"]

    third = anon_client.post(REFRESH, {"refresh": second})

    assert third.status_code == HTTPStatus.OK
    assert anon_client.post(REFRESH, {"refresh": second}).status_code == HTTPStatus.UNAUTHORIZED


@pytest.mark.django_db
@pytest.mark.parametrize("refresh", ["not-a-jwt", "a.b.c", ""])
def test_a_malformed_refresh_token_answers_401_authentication_failed(anon_client, refresh):
    response = anon_client.post(REFRESH, {"refresh": refresh})

    if refresh == "":
        # An empty field is a malformed request, not a malformed token.
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert error_code(response) == "validation_error"
    else:
        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_an_expired_refresh_token_answers_401_authentication_failed(anon_client, user):
    refresh = RefreshToken.for_user(user)
    refresh.set_exp(lifetime=-timedelta(seconds=1))

    response = anon_client.post(REFRESH, {"refresh": str(refresh)})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_an_access_token_is_not_accepted_as_a_refresh_token(anon_client, user):
    pair = token_pair(anon_client, email=user.email)

    response = anon_client.post(REFRESH, {"refresh": pair["access"]})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_a_refresh_token_of_a_deleted_user_answers_401_not_500(anon_client):
    doomed = UserFactory()
    pair = token_pair(anon_client, email=doomed.email)
    doomed.delete()

    response = anon_client.post(REFRESH, {"refresh": pair["refresh"]})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_refresh_without_a_token_answers_400(anon_client):
    response = anon_client.post(REFRESH, {})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "refresh" in response.json()["error"]["details"]


# --- logout ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_logout_answers_205_and_blacklists_the_refresh_token(anon_client, user):
    pair = token_pair(anon_client, email=user.email)

    response = client_for(user).post(LOGOUT, {"refresh": pair["refresh"]})

    assert response.status_code == HTTPStatus.RESET_CONTENT
    refused = anon_client.post(REFRESH, {"refresh": pair["refresh"]})
    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(refused) == "authentication_failed"


@pytest.mark.django_db
def test_logout_needs_an_access_token(anon_client, user):
    pair = token_pair(anon_client, email=user.email)

    response = anon_client.post(LOGOUT, {"refresh": pair["refresh"]})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "not_authenticated"
    # The token was not blacklisted.
    assert anon_client.post(REFRESH, {"refresh": pair["refresh"]}).status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_logout_refuses_another_users_refresh_token_with_403(anon_client, api, other_user):
    others = token_pair(anon_client, email=other_user.email)

    response = api.post(LOGOUT, {"refresh": others["refresh"]})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert error_code(response) == "permission_denied"
    assert anon_client.post(REFRESH, {"refresh": others["refresh"]}).status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_logout_with_an_already_blacklisted_token_answers_401(anon_client, user, api):
    pair = token_pair(anon_client, email=user.email)
    assert api.post(LOGOUT, {"refresh": pair["refresh"]}).status_code == HTTPStatus.RESET_CONTENT

    response = api.post(LOGOUT, {"refresh": pair["refresh"]})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_logout_with_a_malformed_refresh_token_answers_401(api):
    response = api.post(LOGOUT, {"refresh": "garbage"})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_logout_without_a_refresh_token_answers_400(api):
    response = api.post(LOGOUT, {})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "refresh" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_logout_leaves_the_users_other_refresh_tokens_working(anon_client, user, api):
    first = token_pair(anon_client, email=user.email)
    second = token_pair(anon_client, email=user.email)

    assert api.post(LOGOUT, {"refresh": first["refresh"]}).status_code == HTTPStatus.RESET_CONTENT

    assert anon_client.post(REFRESH, {"refresh": second["refresh"]}).status_code == HTTPStatus.OK


# --- me --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_me_answers_the_callers_id_email_and_name(api, user):
    response = api.get(ME)

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"id": str(user.pk), "email": user.email, "name": user.name}


@pytest.mark.django_db
def test_me_without_credentials_answers_401_not_authenticated(anon_client):
    response = anon_client.get(ME)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer a.b.c"])
def test_me_with_a_bad_token_answers_401_authentication_failed(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(ME)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_me_with_an_expired_access_token_answers_401_authentication_failed(user):
    access = AccessToken.for_user(user)
    access.set_exp(lifetime=-timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    response = client.get(ME)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_a_refresh_token_is_not_accepted_as_an_access_token(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user)}")

    response = client.get(ME)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_an_access_token_of_a_deleted_user_answers_401(user):
    client = client_for(user)
    user.delete()

    response = client.get(ME)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_a_remembered_access_token_is_refused_once_it_expires(user, monkeypatch):
    """Workers remember validated access tokens; `exp` is still checked on every request."""
    from datetime import datetime

    from wallet_project import authentication

    access = AccessToken.for_user(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert client.get(ME).status_code == HTTPStatus.OK  # validated, and now remembered

    later = datetime.fromtimestamp(access["exp"] + 1, tz=UTC)
    monkeypatch.setattr(authentication, "_now", later.timestamp)
    monkeypatch.setattr("rest_framework_simplejwt.tokens.aware_utcnow", lambda: later)
    response = client.get(ME)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"


@pytest.mark.django_db
def test_a_remembered_access_token_changed_in_one_byte_is_refused(user):
    token = str(AccessToken.for_user(user))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(ME).status_code == HTTPStatus.OK

    header, payload, signature = token.split(".")
    tampered = ".".join([header, payload, signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tampered}")
    response = client.get(ME)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "authentication_failed"
