"""What the second-factor endpoints read and answer."""

from __future__ import annotations

from rest_framework import serializers

from mfa.selectors import RECOVERY_CODE, TOTP
from mfa.services import RECOVERY_CODE_COUNT
from wallet_project.fields import StrictCharField, StrictRegexField

METHODS = [TOTP, RECOVERY_CODE]
# A TOTP code (6 digits) or a recovery code (16 characters in groups of four), spaces and dashes allowed.
CODE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z \-]{4,30}[0-9A-Za-z]$"
TOTP_CODE_PATTERN = r"^[0-9]{3} ?[0-9]{3}$"


class CodeInputSerializer(serializers.Serializer):
    code = StrictRegexField(
        CODE_PATTERN,
        max_length=32,
        help_text="A code from your authenticator app (6 digits), or one of your recovery codes "
        "(`xxxx-xxxx-xxxx-xxxx`); spaces and dashes are ignored.",
    )


class TotpCodeInputSerializer(serializers.Serializer):
    code = StrictRegexField(
        TOTP_CODE_PATTERN,
        max_length=7,
        help_text="The 6-digit code the authenticator app shows for this account.",
    )


class MfaLoginInputSerializer(CodeInputSerializer):
    mfa_token = StrictCharField(
        min_length=1, max_length=128, help_text="The `mfa_token` of `POST /api/v1/auth/token/`."
    )


class MfaStatusOutputSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(help_text="Whether logging in asks for a second factor.")
    methods = serializers.ListField(
        child=serializers.ChoiceField(choices=METHODS),
        help_text="What passes the second factor: `totp`, and `recovery_code` while unused ones are left.",
    )
    recovery_codes_left = serializers.IntegerField(min_value=0, max_value=RECOVERY_CODE_COUNT)


class RecoveryCodesOutputSerializer(MfaStatusOutputSerializer):
    recovery_codes = serializers.ListField(
        child=serializers.RegexField(r"^[0-9a-z]{4}(-[0-9a-z]{4}){3}$"),
        min_length=RECOVERY_CODE_COUNT,
        max_length=RECOVERY_CODE_COUNT,
        help_text="Ten single-use codes, each passing the second factor once when the app is lost. Shown only in "
        "this answer: only their hashes are kept.",
    )


class TotpEnrolmentOutputSerializer(serializers.Serializer):
    secret = serializers.RegexField(
        r"^[A-Z2-7]+$", help_text="The shared secret in base32, to type into an app that cannot scan."
    )
    otpauth_uri = serializers.CharField(
        help_text="The `otpauth://totp/…` URI (SHA-1, 6 digits, 30-second steps) that apps read from the QR code."
    )
    qr_svg = serializers.CharField(help_text="The URI as a QR code: an SVG document.")


class MfaChallengeOutputSerializer(serializers.Serializer):
    mfa_required = serializers.BooleanField(help_text="Always `true`: no tokens yet, a code is needed.")
    mfa_token = serializers.CharField(
        help_text="Send it with a code to `POST /api/v1/auth/token/mfa/`. It lives 5 minutes, is bound to this "
        "user, and is used up by a successful login or by 5 wrong codes."
    )
    methods = serializers.ListField(child=serializers.ChoiceField(choices=METHODS))
