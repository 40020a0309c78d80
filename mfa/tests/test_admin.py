"""The back office's second step, as staff meet it with Django's test client, and support's reset."""

from __future__ import annotations

import logging
import re
import time
from http import HTTPStatus

import pyotp
import pytest
from django.core.management import call_command
from django.test import Client

from events.models import Event
from mfa.models import RecoveryCode, TOTPDevice
from tests.admin_support import logged_in, staff_in
from tests.factories import PASSWORD, UserFactory
from tests.second_factor import STEP, enrolled
from wallets.models import StaffAction

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
INDEX = "/admin/"
VERIFY = "/admin/mfa/verify/"
ENROL = "/admin/mfa/enrol/"
WALLETS = "/admin/wallets/wallet/"


@pytest.fixture
def required(settings):
    settings.ADMIN_REQUIRE_MFA = True


def _password(client: Client, user, next_url: str = INDEX):
    response = client.post(f"{LOGIN}?next={next_url}", {"username": user.email, "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND, response.content[:300]
    return response


def _secret_on(page: str) -> str:
    return re.search(r'<code id="mfa-secret">([A-Z2-7]+)</code>', page)[1]


def test_after_the_password_a_staff_member_with_an_app_gives_a_code_then_reaches_the_admin(required):
    staff = staff_in("Support")
    app = enrolled(staff)
    client = Client()

    assert _password(client, staff, WALLETS)["Location"] == WALLETS
    sent_on = client.get(WALLETS)
    assert sent_on.status_code == HTTPStatus.FOUND
    assert sent_on["Location"] == f"{VERIFY}?next=%2Fadmin%2Fwallets%2Fwallet%2F"
    page = client.get(sent_on["Location"])
    assert page.status_code == HTTPStatus.OK
    assert b"authenticator app" in page.content
    verified = client.post(VERIFY, {"code": app.unused_code(), "next": WALLETS})

    assert verified.status_code == HTTPStatus.FOUND
    assert verified["Location"] == WALLETS
    assert client.get(WALLETS).status_code == HTTPStatus.OK
    assert client.get(INDEX).status_code == HTTPStatus.OK


def test_until_the_code_every_admin_page_leads_to_the_second_step(required):
    staff = staff_in("Finance")
    enrolled(staff)
    client = Client()
    _password(client, staff)

    for path in (INDEX, WALLETS, "/admin/transactions/transaction/", "/admin/accounts/user/"):
        response = client.get(path)
        assert response.status_code == HTTPStatus.FOUND, path
        assert response["Location"].startswith(VERIFY), path
    assert client.get(LOGIN)["Location"].startswith(VERIFY)


def test_a_wrong_code_is_refused_on_the_page_and_counts_as_a_failed_login(required, settings):
    settings.THROTTLE_LOGIN_RATE = "2/minute"
    staff = staff_in("Support")
    app = enrolled(staff)
    client = Client()
    _password(client, staff)
    wrong = app.totp.at(time.time() + 10 * STEP)

    first = client.post(VERIFY, {"code": wrong})
    second = client.post(VERIFY, {"code": wrong})
    right_but_throttled = client.post(VERIFY, {"code": app.unused_code()})

    assert first.status_code == second.status_code == HTTPStatus.OK
    assert b"not valid" in first.content
    assert right_but_throttled.status_code == HTTPStatus.OK
    assert b"Too many failed attempts" in right_but_throttled.content
    assert client.get(INDEX)["Location"].startswith(VERIFY)


def test_a_code_used_to_log_in_to_the_api_is_refused_in_the_admin(required):
    staff = staff_in("Support")
    app = enrolled(staff)
    code = app.unused_code()
    from tests.second_factor import logged_in_with_code

    logged_in_with_code(staff, app, code=code)
    client = Client()
    _password(client, staff)

    assert b"not valid" in client.post(VERIFY, {"code": code}).content
    assert client.get(INDEX).status_code == HTTPStatus.FOUND


def test_a_recovery_code_passes_the_admin_second_step_once(required):
    staff = staff_in("Support")
    app = enrolled(staff)
    client = Client()
    _password(client, staff)

    assert client.post(VERIFY, {"code": app.recovery_codes[0]})["Location"] == INDEX
    assert client.get(INDEX).status_code == HTTPStatus.OK
    other = Client()
    _password(other, staff)
    assert b"not valid" in other.post(VERIFY, {"code": app.recovery_codes[0]}).content


def test_a_staff_member_without_an_app_is_taken_to_add_one_before_anything_else(required):
    staff = staff_in("Support")
    client = Client()
    _password(client, staff, WALLETS)

    sent_to = client.get(WALLETS)
    assert sent_to["Location"] == f"{ENROL}?next=%2Fadmin%2Fwallets%2Fwallet%2F"
    page = client.get(sent_to["Location"])
    assert page.status_code == HTTPStatus.OK
    html = page.content.decode()
    assert "<svg" in html and "<path" in html  # the QR code
    app = pyotp.TOTP(_secret_on(html))
    assert _secret_on(client.get(sent_to["Location"]).content.decode()) == app.secret  # the same on a reload
    wrong = client.post(ENROL, {"code": app.at(time.time() + 10 * STEP), "next": WALLETS})
    assert wrong.status_code == HTTPStatus.OK and b"not valid" in wrong.content
    assert not TOTPDevice.objects.get(user=staff).confirmed

    done = client.post(ENROL, {"code": app.now(), "next": WALLETS})

    assert done.status_code == HTTPStatus.OK
    codes = re.findall(r"<li><code>([0-9a-z-]{19})</code></li>", done.content.decode())
    assert len(codes) == 10
    assert RecoveryCode.objects.filter(user=staff).count() == 10
    assert WALLETS in done.content.decode()  # the Continue link
    assert client.get(WALLETS).status_code == HTTPStatus.OK
    assert [event.type for event in Event.objects.filter(user=staff)] == ["user.mfa_enabled"]


def test_the_second_step_pages_send_anyone_else_to_the_login(required):
    customer = UserFactory()
    anonymous = Client()
    not_staff = logged_in(customer)

    for client in (anonymous, not_staff):
        for path in (VERIFY, ENROL):
            response = client.get(path)
            assert response.status_code == HTTPStatus.FOUND
            assert response["Location"] == LOGIN
    assert not TOTPDevice.objects.exists()


def test_a_verified_session_on_the_second_step_pages_goes_on_to_where_it_was_going(required):
    staff = staff_in("Support")
    app = enrolled(staff)
    client = Client()
    _password(client, staff)
    client.post(VERIFY, {"code": app.unused_code()})

    assert client.get(f"{VERIFY}?next={WALLETS}")["Location"] == WALLETS
    assert client.get(ENROL)["Location"] == INDEX


def test_the_next_page_must_be_one_of_this_site(required):
    staff = staff_in("Support")
    app = enrolled(staff)
    client = Client()
    _password(client, staff)

    response = client.post(VERIFY, {"code": app.unused_code(), "next": "https://evil.example.com/"})

    assert response["Location"] == INDEX


def test_logging_out_from_the_second_step_ends_the_session(required):
    staff = staff_in("Support")
    enrolled(staff)
    client = Client()
    _password(client, staff)

    response = client.post("/admin/mfa/logout/")

    assert response["Location"] == LOGIN
    assert client.get(INDEX)["Location"].startswith(LOGIN)


def test_without_the_requirement_staff_without_an_app_use_the_password_alone(settings):
    settings.ADMIN_REQUIRE_MFA = False
    staff = staff_in("Support")
    client = Client()
    _password(client, staff)

    assert client.get(INDEX).status_code == HTTPStatus.OK


def test_without_the_requirement_staff_who_added_an_app_are_still_asked_for_a_code(settings):
    settings.ADMIN_REQUIRE_MFA = False
    staff = staff_in("Support")
    app = enrolled(staff)
    client = Client()
    _password(client, staff)

    assert client.get(INDEX)["Location"].startswith(VERIFY)
    client.post(VERIFY, {"code": app.unused_code()})
    assert client.get(INDEX).status_code == HTTPStatus.OK


def test_a_session_from_before_the_requirement_is_asked_for_the_second_step(required):
    staff = staff_in("Support")
    client = logged_in(staff)  # no second step was asked when it logged in

    assert client.get(INDEX)["Location"].startswith(ENROL)


# --- support's reset ------------------------------------------------------------------------


def _reset_url(user) -> str:
    return f"/admin/accounts/user/{user.pk}/reset_mfa/"


def test_support_resets_a_users_second_factor_with_a_reason(support, caplog, django_capture_on_commit_callbacks):
    customer = UserFactory()
    enrolled(customer)
    page = support.get(f"/admin/accounts/user/{customer.pk}/change/")
    assert _reset_url(customer).encode() in page.content
    assert b"On: an authenticator app, and 10 unused recovery code(s)." in page.content

    with caplog.at_level(logging.INFO, logger="wallet.audit"), django_capture_on_commit_callbacks(execute=True):
        response = support.post(_reset_url(customer), {"reason": "Lost phone, ticket 4711"})

    assert response.status_code == HTTPStatus.FOUND
    assert not TOTPDevice.objects.filter(user=customer).exists()
    assert not RecoveryCode.objects.filter(user=customer).exists()
    action = StaffAction.objects.get(action=StaffAction.Action.MFA_RESET)
    assert (action.target_id, action.reason) == (str(customer.pk), "Lost phone, ticket 4711")
    assert action.details == {"was_enabled": True, "recovery_codes_left": 10}
    assert [event.type for event in Event.objects.filter(user=customer)] == ["user.mfa_enabled", "user.mfa_disabled"]
    reset_lines = [record for record in caplog.records if record.getMessage() == "mfa reset"]
    assert len(reset_lines) == 1 and reset_lines[0].user_id == str(customer.pk)
    login = Client().post(
        "/api/v1/auth/token/", {"email": customer.email, "password": PASSWORD}, content_type="application/json"
    )
    assert set(login.json()) == {"access", "refresh"}


def test_a_reset_needs_a_reason(support):
    customer = UserFactory()
    enrolled(customer)

    response = support.post(_reset_url(customer), {"reason": ""})

    assert response.status_code == HTTPStatus.OK
    assert TOTPDevice.objects.filter(user=customer).exists()


def test_staff_without_the_reset_permission_cannot_reset(db):
    customer = UserFactory()
    enrolled(customer)
    plain_staff = logged_in(UserFactory(is_staff=True))

    assert plain_staff.get(_reset_url(customer)).status_code == HTTPStatus.FORBIDDEN
    assert plain_staff.post(_reset_url(customer), {"reason": "x"}).status_code == HTTPStatus.FORBIDDEN
    assert TOTPDevice.objects.filter(user=customer).exists()


def test_a_reset_unverifies_the_staff_members_sessions_at_once(required):
    staff = staff_in("Support")
    app = enrolled(staff)
    client = Client()
    _password(client, staff)
    client.post(VERIFY, {"code": app.unused_code()})
    assert client.get(INDEX).status_code == HTTPStatus.OK

    call_command("reset_mfa", staff.email.upper(), reason="test")

    assert client.get(INDEX)["Location"].startswith(ENROL)


def test_the_user_list_shows_who_has_a_second_factor(support):
    enrolled(UserFactory(email="with@example.com"))
    UserFactory(email="without@example.com")

    page = support.get("/admin/accounts/user/?q=example.com").content.decode()

    assert "2FA" in page


def test_reset_mfa_from_a_shell(capsys, caplog, django_capture_on_commit_callbacks):
    customer = UserFactory()
    enrolled(customer)

    with caplog.at_level(logging.INFO, logger="wallet.audit"), django_capture_on_commit_callbacks(execute=True):
        call_command("reset_mfa", customer.email, reason="ticket 12")
    call_command("reset_mfa", customer.email)

    out = capsys.readouterr().out
    assert "is reset" in out and "nothing changed" in out
    assert not TOTPDevice.objects.filter(user=customer).exists()
    assert not StaffAction.objects.exists()  # no staff member: the audit line says "shell"
    (line,) = [record for record in caplog.records if record.getMessage() == "mfa reset"]
    assert (line.staff, line.reason) == ("shell", "ticket 12")


def test_reset_mfa_of_an_unknown_email_fails():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("reset_mfa", "nobody@example.com")


def test_without_the_requirement_a_staff_member_may_add_an_app_of_their_own_accord(settings):
    settings.ADMIN_REQUIRE_MFA = False
    staff = staff_in("Support")
    client = Client()
    _password(client, staff)

    page = client.get(ENROL).content.decode()
    app = pyotp.TOTP(_secret_on(page))
    done = client.post(ENROL, {"code": app.now()})

    assert done.status_code == HTTPStatus.OK
    assert TOTPDevice.objects.get(user=staff).confirmed
    assert client.get(INDEX).status_code == HTTPStatus.OK  # verified by the enrolment's code
    again = Client()
    _password(again, staff)
    assert again.get(INDEX)["Location"].startswith(VERIFY)  # from now on, asked for the code
