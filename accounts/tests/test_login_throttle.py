"""The failed-login throttle: one counter per (client IP, account), shared by the API and the admin login,
whatever spelling of the email reaches the account, with the client's address taken behind trusted proxies."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from accounts.models import User
from conftest import error_code
from tests.factories import PASSWORD, UserFactory
from wallet_project import throttling
from wallet_project.throttling import client_ip

TOKEN_URL = "/api/v1/auth/token/"
ADMIN_LOGIN = reverse("admin:login")
ADMIN_INDEX = reverse("admin:index")
ATTACKER_IP = "203.0.113.9"
OTHER_IP = "198.51.100.7"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_redis_usable")]


@pytest.fixture
def _redis_usable():
    throttling._state["down_until"] = 0.0


def _api_login(email: str, password: str, ip: str = ATTACKER_IP, **headers: str):
    return Client().post(
        TOKEN_URL, {"email": email, "password": password}, content_type="application/json", REMOTE_ADDR=ip, **headers
    )


def _admin_login(client: Client, email: str, password: str, ip: str = ATTACKER_IP):
    return client.post(ADMIN_LOGIN, {"username": email, "password": password, "next": ADMIN_INDEX}, REMOTE_ADDR=ip)


def _logged_in(client: Client) -> bool:
    return SESSION_KEY in client.session


# --- the admin login ----------------------------------------------------------------------


@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_admin_login_refuses_the_right_password_after_repeated_failures():
    staff = UserFactory(email="office@example.com", is_staff=True)
    browser = Client()
    for _ in range(3):
        assert _admin_login(browser, staff.email, "wrong-password").status_code == HTTPStatus.OK

    refused = _admin_login(browser, staff.email, PASSWORD)

    assert refused.status_code == HTTPStatus.OK  # the form again, not the redirect into the admin
    assert "Too many failed logins" in refused.content.decode()
    assert not _logged_in(browser)
    staff.refresh_from_db()
    assert staff.last_login is None


@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_admin_login_throttle_is_per_address_and_account():
    staff = UserFactory(email="office@example.com", is_staff=True)
    colleague = UserFactory(email="colleague@example.com", is_staff=True)
    for _ in range(3):
        _admin_login(Client(), staff.email, "wrong-password")

    elsewhere, same_office = Client(), Client()

    assert _admin_login(elsewhere, staff.email, PASSWORD, ip=OTHER_IP).status_code == HTTPStatus.FOUND
    assert _logged_in(elsewhere)
    assert _admin_login(same_office, colleague.email, PASSWORD).status_code == HTTPStatus.FOUND
    assert _logged_in(same_office)


@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_failed_api_logins_and_failed_admin_logins_share_one_counter():
    staff = UserFactory(email="office@example.com", is_staff=True)
    for _ in range(2):
        assert _api_login(staff.email, "wrong-password").status_code == HTTPStatus.UNAUTHORIZED
    _admin_login(Client(), staff.email, "wrong-password")
    browser = Client()

    assert _api_login(staff.email, PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Too many failed logins" in _admin_login(browser, staff.email, PASSWORD).content.decode()
    assert not _logged_in(browser)


@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_successful_admin_logins_do_not_count_as_failures():
    staff = UserFactory(email="office@example.com", is_staff=True)
    for _ in range(5):
        browser = Client()
        assert _admin_login(browser, staff.email, PASSWORD).status_code == HTTPStatus.FOUND
        assert _logged_in(browser)


# --- look-alike spellings of an email -----------------------------------------------------

EMAIL = "isaac@example.com"
# Each of these reaches the account of EMAIL when logging in: PostgreSQL's case-insensitive match
# (`UPPER`) maps the dotless ı (U+0131) to I and the long ſ (U+017F) to S, where Python's lower() keeps
# them; the login trims surrounding whitespace.
LOOK_ALIKES = [
    "ısaac@example.com",
    "iſaac@example.com",
    "ıſaac@example.com",
    "ISAAC@EXAMPLE.COM",
    " isaac@example.com\t",
]


@pytest.mark.parametrize("spelling", LOOK_ALIKES)
def test_a_look_alike_spelling_reaches_the_account(spelling):
    user = UserFactory(email=EMAIL)

    response = _api_login(spelling, PASSWORD, ip=OTHER_IP)

    assert response.status_code == HTTPStatus.OK
    assert User.objects.login_matches(spelling.strip()).get() == user  # the login trims the field


@pytest.mark.parametrize("spelling", LOOK_ALIKES)
@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_failures_with_look_alike_spellings_count_against_the_account(spelling):
    UserFactory(email=EMAIL)
    for _ in range(3):
        assert _api_login(spelling, "wrong-password").status_code == HTTPStatus.UNAUTHORIZED

    refused = _api_login(EMAIL, PASSWORD)

    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert error_code(refused) == "throttled"


@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_rotating_look_alike_spellings_does_not_escape_the_throttle():
    UserFactory(email=EMAIL)
    for spelling in LOOK_ALIKES[:3]:
        assert _api_login(spelling, "wrong-password").status_code == HTTPStatus.UNAUTHORIZED

    assert _api_login(LOOK_ALIKES[3], PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS


@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_look_alike_spellings_share_the_counter_on_the_admin_login_too():
    UserFactory(email=EMAIL, is_staff=True)
    for spelling in LOOK_ALIKES[:3]:
        _admin_login(Client(), spelling, "wrong-password")
    browser = Client()

    response = _admin_login(browser, EMAIL, PASSWORD)

    assert "Too many failed logins" in response.content.decode()
    assert not _logged_in(browser)


@override_settings(THROTTLE_LOGIN_RATE="3/day")
def test_failures_against_an_unknown_email_are_counted_by_its_case_fold():
    for spelling in ("nobody@example.com", "NOBODY@example.com", "nobody@EXAMPLE.COM"):
        assert _api_login(spelling, "guess").status_code == HTTPStatus.UNAUTHORIZED

    assert _api_login("Nobody@Example.com", "guess").status_code == HTTPStatus.TOO_MANY_REQUESTS


# --- the client's address behind proxies ------------------------------------------------------


@pytest.mark.parametrize(
    ("num_proxies", "forwarded_for", "expected"),
    [
        (0, "203.0.113.5", "10.0.0.2"),  # no trusted proxy: the header is the client's to write
        (1, None, "10.0.0.2"),
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # a forged entry on the left is ignored
        (2, "6.6.6.6, 203.0.113.5, 10.0.0.9", "203.0.113.5"),
        (2, "203.0.113.5", "203.0.113.5"),
        (1, "2001:db8::1", "2001:db8::1"),
        (1, "not-an-address", "10.0.0.2"),
    ],
)
def test_client_ip_is_taken_num_proxies_entries_from_the_end_of_x_forwarded_for(num_proxies, forwarded_for, expected):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", **headers)

    with override_settings(NUM_PROXIES=num_proxies):
        assert client_ip(request) == expected


@override_settings(NUM_PROXIES=1, THROTTLE_LOGIN_RATE="3/day")
def test_behind_a_proxy_each_client_has_its_own_failed_login_counter():
    staff = UserFactory(email="office@example.com")
    proxy = {"ip": "10.0.0.2"}
    for _ in range(3):
        _api_login(staff.email, "wrong-password", HTTP_X_FORWARDED_FOR=ATTACKER_IP, **proxy)

    forged = _api_login(staff.email, PASSWORD, HTTP_X_FORWARDED_FOR=f"{OTHER_IP}, {ATTACKER_IP}", **proxy)
    other_client = _api_login(staff.email, PASSWORD, HTTP_X_FORWARDED_FOR=OTHER_IP, **proxy)

    assert forged.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert other_client.status_code == HTTPStatus.OK


@override_settings(NUM_PROXIES=1, THROTTLE_ANON_RATE="2/day")
def test_behind_a_proxy_anonymous_callers_are_throttled_per_client():
    def register(client_address: str) -> int:
        return (
            Client()
            .post(
                "/api/v1/auth/register/",
                {},
                content_type="application/json",
                REMOTE_ADDR="10.0.0.2",
                HTTP_X_FORWARDED_FOR=client_address,
            )
            .status_code
        )

    statuses = [register(ATTACKER_IP) for _ in range(3)]

    assert statuses == [HTTPStatus.BAD_REQUEST, HTTPStatus.BAD_REQUEST, HTTPStatus.TOO_MANY_REQUESTS]
    assert register(OTHER_IP) == HTTPStatus.BAD_REQUEST
    assert not User.objects.exists()
