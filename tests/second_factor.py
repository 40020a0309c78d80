"""Helpers for the second factor's tests: an authenticator app made with pyotp, and logging in with it.

A code is accepted within one 30-second step either side of the server's
clock, and only for a step later than the last one accepted. A test computes
its codes from the time it reads and the server checks them a moment later,
possibly one step on; so the codes a test may count on are those of the
current step and the next: `App.unused_code()` hands them out in turn, two
per window (the enrolment uses the first). Other steps are tested with
explicit times (`pyotp.TOTP.at`), never by sleeping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from http import HTTPStatus

import pyotp
from rest_framework.test import APIClient

from accounts.models import User
from mfa.services import totp_enrolment_confirm, totp_enrolment_start
from tests.factories import PASSWORD

STEP = 30


@dataclass
class App:
    """A user's authenticator app, and the recovery codes they were shown when they added it."""

    totp: pyotp.TOTP
    recovery_codes: list[str]
    used_step: int = -1

    def unused_code(self) -> str:
        """A code the server accepts now and has not seen: of the current step, or else the next one."""
        current = int(time.time()) // STEP
        step = max(current, self.used_step + 1)
        if step > current + 1:
            raise RuntimeError("both codes of this window are used: a test gets two per user")
        self.used_step = step
        return self.totp.at(step * STEP)


def enrolled(user: User) -> App:
    """Turn on `user`'s second factor as they would: a new secret, confirmed with a code from the app."""
    enrolment = totp_enrolment_start(user=user)
    app = App(pyotp.TOTP(enrolment.secret), [])
    app.recovery_codes = totp_enrolment_confirm(user=user, code=app.unused_code())
    return app


def password_step(client: APIClient, user: User) -> dict:
    """The first step of a login with a second factor on: its challenge."""
    response = client.post("/api/v1/auth/token/", {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert body["mfa_required"] is True, body
    return body


def logged_in_with_code(user: User, app: App, *, code: str | None = None) -> dict:
    """A token pair from the two-step login (`code`: an unused one of the app's by default)."""
    client = APIClient()
    challenge = password_step(client, user)
    response = client.post(
        "/api/v1/auth/token/mfa/",
        {"mfa_token": challenge["mfa_token"], "code": code or app.unused_code()},
        format="json",
    )
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def bearer_client(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client
