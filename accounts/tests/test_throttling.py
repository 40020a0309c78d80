"""Throttles kept in Redis: anonymous, per user, and failed logins keyed by (IP, account)."""

from http import HTTPStatus

import pytest
from django.test import override_settings

from conftest import client_for
from tests.factories import PASSWORD, UserFactory
from wallet_project import throttling

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _redis_usable():
    throttling._state["down_until"] = 0.0


def _login(client, email, password, ip="10.0.0.1"):
    return client.post(TOKEN_URL, {"email": email, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_failed_logins_are_throttled_per_ip_and_email_with_retry_after(anon_client):
    user = UserFactory(email="ann@example.com")

    for _ in range(3):
        assert _login(anon_client, user.email, "wrong-password").status_code == HTTPStatus.UNAUTHORIZED
    refused = _login(anon_client, user.email, PASSWORD)

    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1


@pytest.mark.django_db
@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_failed_logins_of_one_user_do_not_block_other_users_behind_the_same_ip(anon_client):
    typist = UserFactory(email="typo@example.com")
    colleague = UserFactory(email="colleague@example.com")
    for _ in range(5):
        _login(anon_client, typist.email, "wrong-password")

    response = _login(anon_client, colleague.email, PASSWORD)

    assert response.status_code == HTTPStatus.OK
    assert set(response.json()) == {"access", "refresh"}


@pytest.mark.django_db
@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_an_attacker_failing_from_one_ip_does_not_lock_the_user_out_elsewhere(anon_client):
    victim = UserFactory(email="victim@example.com")
    for _ in range(5):
        _login(anon_client, victim.email, "guess", ip="203.0.113.9")

    assert _login(anon_client, victim.email, "guess", ip="203.0.113.9").status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert _login(anon_client, victim.email, PASSWORD, ip="198.51.100.7").status_code == HTTPStatus.OK


@pytest.mark.django_db
@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_successful_logins_do_not_count_as_failures(anon_client):
    user = UserFactory()
    for _ in range(6):
        assert _login(anon_client, user.email, PASSWORD).status_code == HTTPStatus.OK


@pytest.mark.django_db
@override_settings(THROTTLE_USER_RATE="5/day")
def test_authenticated_users_are_throttled_per_user(user, other_user):
    client = client_for(user)
    statuses = [client.get("/api/v1/wallets/").status_code for _ in range(6)]

    assert statuses[:5] == [HTTPStatus.OK] * 5
    assert statuses[5] == HTTPStatus.TOO_MANY_REQUESTS
    assert client_for(other_user).get("/api/v1/wallets/").status_code == HTTPStatus.OK


@pytest.mark.django_db
@override_settings(THROTTLE_ANON_RATE="2/day")
def test_anonymous_callers_are_throttled_per_ip(anon_client):
    url = "/api/v1/auth/register/"
    statuses = [anon_client.post(url, {}, REMOTE_ADDR="10.9.9.9").status_code for _ in range(3)]

    assert statuses == [HTTPStatus.BAD_REQUEST, HTTPStatus.BAD_REQUEST, HTTPStatus.TOO_MANY_REQUESTS]
    assert anon_client.post(url, {}, REMOTE_ADDR="10.9.9.10").status_code == HTTPStatus.BAD_REQUEST


@pytest.mark.django_db
def test_throttling_lets_requests_through_when_redis_is_unreachable(user, settings):
    settings.THROTTLE_USER_RATE = "1/minute"
    # Changing CACHES resets Django's cache handlers (and django-redis's client with them).
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }
    client = client_for(user)

    statuses = [client.get("/api/v1/wallets/").status_code for _ in range(3)]

    assert statuses == [HTTPStatus.OK] * 3
    assert throttling._state["down_until"] > 0


@pytest.mark.django_db
@override_settings(THROTTLE_USER_RATE="100/minute")
def test_a_window_counter_expires_with_its_window(user):
    """The counter gets its expiry on the window's first request, and keeps it."""
    from django_redis import get_redis_connection

    client = client_for(user)
    client.get("/api/v1/auth/me/")
    redis = get_redis_connection("default")
    (key,) = redis.keys(f"*:throttle:user:{user.pk}:*")
    first_ttl = redis.ttl(key)
    client.get("/api/v1/auth/me/")

    assert int(redis.get(key)) == 2
    assert 0 < redis.ttl(key) <= first_ttl <= 61
