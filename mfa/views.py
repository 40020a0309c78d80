"""The second-factor endpoints under `/api/v1/auth/`: enrolment, status, recovery codes, turning MFA off, and the
login in two steps (`auth/token/` answers a challenge instead of tokens when MFA is on; `auth/token/mfa/`
completes it).

Every check of a code that guards an account (the login's second step,
turning MFA off, new recovery codes) counts as a login attempt: refused while
the (address, account) pair is throttled, and a wrong code counts as a failed
login (`FailedLoginThrottle`, shared with the password step and the admin).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import views as accounts_views
from accounts.models import User
from accounts.serializers import TokenPairOutputSerializer
from mfa import services
from mfa.selectors import OFF, login_challenge_user, mfa_status
from mfa.serializers import (
    CodeInputSerializer,
    MfaChallengeOutputSerializer,
    MfaLoginInputSerializer,
    MfaStatusOutputSerializer,
    RecoveryCodesOutputSerializer,
    TotpCodeInputSerializer,
    TotpEnrolmentOutputSerializer,
)
from wallet_project.errors import SecondFactorRefused
from wallet_project.schema import error_responses, request_example, response_example, success
from wallet_project.throttling import FailedLoginThrottle

Result = TypeVar("Result")

STATUS_EXAMPLE = {"enabled": True, "methods": ["totp", "recovery_code"], "recovery_codes_left": 10}
RECOVERY_CODES_EXAMPLE = {
    **STATUS_EXAMPLE,
    "recovery_codes": [
        "7kq2-mx9d-4hvw-c3tb",
        "p8zr-2n6f-jq4s-wd7k",
        "4vbh-x2c9-mt6q-8srz",
        "n3wd-7kq5-c2zj-9hvx",
        "q6mt-4sb8-z2wk-r7dn",
        "h9xc-3vr7-kd2m-6qts",
        "b2js-8wq4-n7cv-5zmh",
        "t5rk-6hz3-w9bq-2cxn",
        "z8cm-2dq6-s4vj-7khw",
        "w3nq-9tb5-x7rd-4mzc",
    ],
}
SECRET_EXAMPLE = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ENROLMENT_EXAMPLE = {
    "secret": SECRET_EXAMPLE,
    "otpauth_uri": f"otpauth://totp/Wallet:ann%40example.com?secret={SECRET_EXAMPLE}&algorithm=SHA1&digits=6"
    "&period=30&issuer=Wallet",
    "qr_svg": '<svg xmlns="http://www.w3.org/2000/svg" width="49mm" height="49mm" version="1.1" '
    'viewBox="0 0 49 49"><path d="M2,2H3V3H2z…" id="qr-path" fill="#000000" fill-opacity="1" '
    'fill-rule="nonzero" stroke="none"/></svg>',
}
CHALLENGE_EXAMPLE = {
    "mfa_required": True,
    "mfa_token": "q1Zr7d0m8v3Yl9cXw2s5B6nT4kJ0hGfEaUoPiLzN_y8",
    "methods": ["totp", "recovery_code"],
}
WRONG_CODE = {"code": [services.WRONG_CODE]}
BAD_CODE = {"code": ["This value does not match the required pattern."]}


def counted_as_login(request: Request, check: Callable[[], Result], *, email: str) -> Result:
    """Run a check of a code as a login attempt of `email`'s account: refused (429) while the (address, account)
    pair is throttled; a wrong code counts as a failed login."""
    failed_logins = FailedLoginThrottle(request, email)
    if not failed_logins.allow_request():
        raise Throttled(failed_logins.wait())
    try:
        return check()
    except (services.WrongCode, SecondFactorRefused):
        failed_logins.record_failure()
        raise


@extend_schema(tags=["auth"])
class MfaStatusView(APIView):
    @extend_schema(
        summary="My second factor",
        description="Whether logging in asks for a second factor, the methods that pass it, and how many unused "
        "recovery codes are left.",
        responses={
            200: success(MfaStatusOutputSerializer, "The caller's second factor."),
            **error_responses(401, 429, 503),
        },
        examples=[response_example(STATUS_EXAMPLE, "On")],
    )
    def get(self, request: Request) -> Response:
        return Response(mfa_status(user_id=request.user.pk).as_data())


@extend_schema(tags=["auth"])
class TotpView(APIView):
    @extend_schema(
        summary="Start adding an authenticator app",
        description="Makes a new secret for a TOTP authenticator app (RFC 6238: SHA-1, 6 digits, 30-second steps) "
        "and answers it three ways: `secret` to type in, `otpauth_uri`, and `qr_svg`, the URI as a QR code (an SVG "
        "image) to scan. Nothing changes for logging in until `POST /api/v1/auth/mfa/totp/confirm/` gets a first "
        "code from the app; calling this again replaces the pending secret. With two-factor authentication "
        "already on it answers 409 `mfa_already_enabled`. The secret is kept encrypted.",
        request=None,
        responses={
            201: success(TotpEnrolmentOutputSerializer, "The pending secret, its URI and its QR code."),
            **error_responses(401, 409, 429, 503, codes={409: ["mfa_already_enabled"]}),
        },
        examples=[response_example(ENROLMENT_EXAMPLE, "Pending app", status=201)],
    )
    def post(self, request: Request) -> Response:
        enrolment = services.totp_enrolment_start(user=request.user)
        return Response(
            {"secret": enrolment.secret, "otpauth_uri": enrolment.otpauth_uri, "qr_svg": enrolment.qr_svg},
            status=HTTPStatus.CREATED,
        )

    @extend_schema(
        summary="Turn two-factor authentication off",
        description="Given a code (from the app, or a recovery code), removes the app's secret and the recovery "
        "codes: logging in needs the password only. A wrong code answers 400 and counts as a failed login "
        "(429 after too many). Answers the new state. Without two-factor authentication on: 409 "
        "`mfa_not_enabled`.",
        request=CodeInputSerializer,
        responses={
            200: success(MfaStatusOutputSerializer, "Off: the caller's second factor now."),
            **error_responses(400, 401, 409, 429, 503, codes={409: ["mfa_not_enabled"]}, invalid=WRONG_CODE),
        },
        examples=[
            request_example({"code": "492039"}),
            response_example(OFF.as_data(), "Off"),
        ],
    )
    def delete(self, request: Request) -> Response:
        serializer = CodeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        code = serializer.validated_data["code"]
        counted_as_login(request, lambda: services.mfa_disable(user=request.user, code=code), email=request.user.email)
        return Response(OFF.as_data())


@extend_schema(tags=["auth"])
class TotpConfirmView(APIView):
    @extend_schema(
        summary="Confirm the authenticator app: two-factor authentication on",
        description="A first code from the app proves it holds the secret of `POST /api/v1/auth/mfa/totp/`: from "
        "now on logging in asks for a code. Answers ten recovery codes, shown only here (only their hashes are "
        "kept), each passing the second factor once when the app is lost. A wrong code answers 400; with no app "
        "pending, 404; with two-factor authentication already on, 409 `mfa_already_enabled`.",
        request=TotpCodeInputSerializer,
        responses={
            200: success(RecoveryCodesOutputSerializer, "On, with the recovery codes."),
            **error_responses(400, 401, 404, 409, 429, 503, codes={409: ["mfa_already_enabled"]}, invalid=WRONG_CODE),
        },
        examples=[request_example({"code": "492039"}), response_example(RECOVERY_CODES_EXAMPLE, "On")],
    )
    def post(self, request: Request) -> Response:
        serializer = TotpCodeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        codes = services.totp_enrolment_confirm(user=request.user, code=serializer.validated_data["code"])
        return Response({**mfa_status(user_id=request.user.pk).as_data(), "recovery_codes": codes})


@extend_schema(tags=["auth"])
class RecoveryCodesView(APIView):
    @extend_schema(
        summary="New recovery codes",
        description="Given a code (from the app, or a recovery code), replaces every recovery code with ten new "
        "ones, shown only here. A wrong code answers 400 and counts as a failed login (429 after too many). "
        "Without two-factor authentication on: 409 `mfa_not_enabled`.",
        request=CodeInputSerializer,
        responses={
            200: success(RecoveryCodesOutputSerializer, "The new recovery codes; the old ones no longer work."),
            **error_responses(400, 401, 409, 429, 503, codes={409: ["mfa_not_enabled"]}, invalid=WRONG_CODE),
        },
        examples=[request_example({"code": "492039"}), response_example(RECOVERY_CODES_EXAMPLE, "New codes")],
    )
    def post(self, request: Request) -> Response:
        serializer = CodeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        code = serializer.validated_data["code"]
        codes = counted_as_login(
            request,
            lambda: services.recovery_codes_regenerate(user=request.user, code=code),
            email=request.user.email,
        )
        return Response({**mfa_status(user_id=request.user.pk).as_data(), "recovery_codes": codes})


LOGIN_ANSWER = PolymorphicProxySerializer(
    component_name="LoginAnswer",
    serializers=[TokenPairOutputSerializer, MfaChallengeOutputSerializer],
    resource_type_field_name=None,
)


@extend_schema(
    tags=["auth"],
    summary="Log in (obtain a JWT pair)",
    description="Exchanges email and password for an access token (send it as `Authorization: Bearer <access>`) "
    "and a refresh token. For a user with two-factor authentication on, a right password answers "
    "`{mfa_required: true, mfa_token, methods}` and **no** tokens: send the `mfa_token` with a code to "
    "`POST /api/v1/auth/token/mfa/`. Wrong credentials answer 401 `authentication_failed`; repeated failures "
    "for one email from one address are throttled (429).",
    responses={
        200: success(LOGIN_ANSWER, "A token pair, or (two-factor authentication on) the challenge of a second step."),
        **error_responses(
            400, 401, 429, 503, codes={401: ["authentication_failed"]}, invalid=accounts_views.NO_PASSWORD
        ),
    },
    examples=[
        request_example({"email": "ann@example.com", "password": "correct-horse-battery"}, "Login"),
        response_example(accounts_views.TOKEN_PAIR_EXAMPLE, "Token pair"),
        response_example(CHALLENGE_EXAMPLE, "Second factor needed"),
    ],
)
class TokenObtainView(accounts_views.TokenObtainView):
    """The password step, then a second step for users with two-factor authentication on."""

    def logged_in(self, user: User) -> dict[str, object]:
        challenge = services.login_challenge_start(user=user)
        if challenge is None:
            return super().logged_in(user)
        return {"mfa_required": True, "mfa_token": challenge.mfa_token, "methods": challenge.methods}


@extend_schema(tags=["auth"])
class MfaTokenView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Log in: the second step",
        description="Completes a login that answered `mfa_required`: the `mfa_token` with a code from the "
        "authenticator app (accepted within one 30-second step either side, and only once) or a recovery code "
        '(once). Answers the token pair; its tokens carry the second factor (`amr`: `["pwd", "otp"]`, and '
        "`mfa_at`, its time, which refreshing keeps). A wrong or used code answers 401 and counts as a failed "
        "login; the `mfa_token` lives 5 minutes and is used up by a success or by 5 wrong codes (then log in "
        "again with the password).",
        request=MfaLoginInputSerializer,
        responses={
            200: success(TokenPairOutputSerializer, "An access token and a refresh token."),
            **error_responses(400, 401, 429, 503, codes={401: ["authentication_failed"]}, invalid=BAD_CODE),
        },
        examples=[
            request_example({"mfa_token": CHALLENGE_EXAMPLE["mfa_token"], "code": "492039"}, "App code"),
            request_example({"mfa_token": CHALLENGE_EXAMPLE["mfa_token"], "code": "7kq2-mx9d-4hvw-c3tb"}, "Recovery"),
            response_example(accounts_views.TOKEN_PAIR_EXAMPLE, "Token pair"),
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = MfaLoginInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        user = login_challenge_user(mfa_token=data["mfa_token"])
        if user is None:
            raise SecondFactorRefused(
                "This mfa_token is not valid: it is unknown, expired or used up. Log in again with your password."
            )
        tokens = counted_as_login(
            request,
            lambda: services.login_challenge_complete(mfa_token=data["mfa_token"], code=data["code"]),
            email=user.email,
        )
        return Response(tokens)
