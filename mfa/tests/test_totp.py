"""The TOTP arithmetic against pyotp (what authenticator apps compute), at explicit times: no sleeping."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from mfa import totp

NOW = 1_800_000_015.0  # 15 seconds into a step
STEP = totp.STEP_SECONDS


@pytest.fixture
def secret() -> bytes:
    return totp.new_secret()


@pytest.fixture
def app(secret: bytes) -> pyotp.TOTP:
    return pyotp.TOTP(totp.secret_base32(secret))


def _step(moment: float) -> int:
    return int(moment) // STEP


@pytest.mark.parametrize("offset", [-STEP, 0, STEP], ids=["previous step", "current step", "next step"])
def test_a_code_within_one_step_either_side_is_accepted_and_names_its_step(secret, app, offset):
    code = app.at(NOW + offset)

    assert totp.matching_step(secret, code, after=-1, now=NOW) == _step(NOW + offset)


@pytest.mark.parametrize("offset", [-2 * STEP, 2 * STEP, -10 * STEP])
def test_a_code_two_steps_away_or_more_is_refused(secret, app, offset):
    assert totp.matching_step(secret, app.at(NOW + offset), after=-1, now=NOW) is None


def test_a_code_of_a_step_already_accepted_or_earlier_is_refused_even_inside_its_window(secret, app):
    accepted = totp.matching_step(secret, app.at(NOW), after=-1, now=NOW)

    assert totp.matching_step(secret, app.at(NOW), after=accepted, now=NOW) is None
    assert totp.matching_step(secret, app.at(NOW - STEP), after=accepted, now=NOW) is None
    assert totp.matching_step(secret, app.at(NOW + STEP), after=accepted, now=NOW) == accepted + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 456", "١٢٣٤٥٦"])
def test_anything_but_six_ascii_digits_is_not_a_code(secret, code):
    assert totp.matching_step(secret, code, after=-1, now=NOW) is None


def test_the_secret_is_160_random_bits(secret):
    assert len(secret) == 20
    assert totp.new_secret() != secret
    assert base64.b32decode(totp.secret_base32(secret)) == secret  # 32 characters: no padding


def test_the_provisioning_uri_is_what_authenticator_apps_read(settings, secret, app):
    settings.MFA_TOTP_ISSUER = "Wallet"

    uri = totp.provisioning_uri(secret, "ann@example.com")

    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Wallet:ann@example.com"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query == {
        "secret": totp.secret_base32(secret),
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
        "issuer": "Wallet",
    }
    parsed = pyotp.parse_uri(uri)
    assert parsed.at(NOW) == app.at(NOW)


def test_the_qr_code_is_an_svg_image():
    svg = totp.qr_svg("otpauth://totp/Wallet:ann%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Wallet")

    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert "<path" in svg
