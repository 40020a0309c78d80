"""TOTP (RFC 6238) as authenticator apps make it: SHA-1, 6 digits, 30-second steps, from a 160-bit secret.

The arithmetic is django-otp's (`django_otp.oath.TOTP`); this module fixes
its parameters, says which step a code belongs to, and writes the
`otpauth://` URI and its QR code (qrcode's SVG image) that an app scans.
"""

from __future__ import annotations

import base64
import re
import secrets
from urllib.parse import quote, urlencode

from django.conf import settings
from django_otp.oath import TOTP

STEP_SECONDS = 30
DIGITS = 6
# Codes of one step before and after the current one are accepted too: the phone's clock and the moment the
# code was typed are rarely exactly ours.
TOLERANCE_STEPS = 1
SECRET_BYTES = 20  # RFC 4226 asks for 160 bits

_CODE = re.compile(rf"\d{{{DIGITS}}}")


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def secret_base32(secret: bytes) -> str:
    """The secret as an app takes it when typed in: base32, without padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def is_totp_code(code: str) -> bool:
    """Whether `code` (normalised) has the shape of a TOTP code, not of a recovery code."""
    return bool(_CODE.fullmatch(code))


def matching_step(secret: bytes, code: str, *, after: int, now: float) -> int | None:
    """The time step whose code `code` is, within TOLERANCE_STEPS of `now` and later than step `after`; None if
    there is none. Only later steps: a code accepted once is never accepted again, even within its window."""
    if not is_totp_code(code):
        return None
    totp = TOTP(secret, step=STEP_SECONDS, digits=DIGITS)
    totp.time = now
    if totp.verify(int(code), tolerance=TOLERANCE_STEPS, min_t=after + 1):
        return totp.t()
    return None


def provisioning_uri(secret: bytes, account: str) -> str:
    """The `otpauth://totp/…` URI of the key URI format that authenticator apps read from the QR code."""
    issuer = settings.MFA_TOTP_ISSUER.replace(":", "")
    # A literal colon separates the issuer from the account; an encoded one would be part of a name.
    label = f"{quote(issuer)}:{quote(account)}" if issuer else quote(account)
    parameters = {
        "secret": secret_base32(secret),
        "algorithm": "SHA1",
        "digits": DIGITS,
        "period": STEP_SECONDS,
    }
    if issuer:
        parameters["issuer"] = issuer
    return f"otpauth://totp/{label}?{urlencode(parameters, quote_via=quote)}"


def qr_svg(uri: str) -> str:
    """The URI as a QR code: an SVG document of one path, to show as an image or inline."""
    # Imported here: only enrolment draws a QR code, and the library costs every web worker megabytes.
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return image.to_string(encoding="unicode")
