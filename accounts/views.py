"""Registration and JWT endpoints (API.md, "Authentication")."""

from __future__ import annotations

from http import HTTPStatus

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from accounts.serializers import (
    PasswordLoginSerializer,
    RefreshInputSerializer,
    RegisterInputSerializer,
    TokenPairOutputSerializer,
    UserOutputSerializer,
)
from accounts.services import token_pair_issue, token_pair_rotate, user_create
from wallet_project.errors import PermissionDenied
from wallet_project.schema import error_responses, request_example, response_example, success
from wallet_project.throttling import FailedLoginThrottle

USER_EXAMPLE = {"id": "3f2c8a4e-6b1d-4e2f-9c3a-7d8e9f0a1b2c", "email": "ann@example.com", "name": "Ann"}
REFRESH_EXAMPLE = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCIsImV4cCI6MTc5NTY5NDQwMCwianRpIjoiOWI"
    "xYzJkM2U0ZjVhNmI3YzhkOWUwZjFhMmIzYzRkNWUiLCJ1c2VyX2lkIjoiM2YyYzhhNGUtNmIxZC00ZTJmLTljM2EtN2Q4ZTlmMGExYjJjIn0."
    "qK2Jb1xRz0cV7mN4pL8sT3wY6uE9iO5aD1fG2hJ7kZ0"
)
TOKEN_PAIR_EXAMPLE = {
    "access": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzk1NjA5MDAwLCJqdGkiOiI0Z"
    "jVhNmI3YzhkOWUwZjFhMmIzYzRkNWU5YjFjMmQzZSIsInVzZXJfaWQiOiIzZjJjOGE0ZS02YjFkLTRlMmYtOWMzYS03ZDhlOWYwYTFiMmMifQ."
    "Xb3nR8tQ1vZ6mK0pW4sL9yC2uF7hJ5dA3eG1iO8kN2M",
    "refresh": REFRESH_EXAMPLE,
}

PASSWORD_TOO_SHORT = {"password": ["This password is too short. It must contain at least 8 characters."]}
NO_PASSWORD = {"password": ["This field is required."]}
NO_REFRESH = {"refresh": ["This field is required."]}


@extend_schema(tags=["auth"])
class RegisterView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Register a user",
        description="Creates a user whose login is the email (case-insensitive, unique). "
        "The password goes through the password validators. No authentication needed.",
        request=RegisterInputSerializer,
        responses={
            201: success(UserOutputSerializer, "Registered: the new user. Log in with `POST /api/v1/auth/token/`."),
            **error_responses(400, 409, 429, 503, codes={409: ["email_taken"]}, invalid=PASSWORD_TOO_SHORT),
        },
        examples=[
            request_example({"email": "ann@example.com", "password": "correct-horse-battery", "name": "Ann"}),
            response_example(USER_EXAMPLE, "Registered", status=201),
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = RegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_create(**serializer.validated_data)
        return Response(UserOutputSerializer(user).data, status=HTTPStatus.CREATED)


@extend_schema(
    tags=["auth"],
    summary="Obtain a JWT pair",
    description="Exchanges email and password for an access token (send it as `Authorization: Bearer <access>`) "
    "and a refresh token. Wrong credentials answer 401 `authentication_failed`; repeated failures for one "
    "email from one address are throttled (429).",
    responses={
        200: success(TokenPairOutputSerializer, "An access token and a refresh token."),
        **error_responses(400, 401, 429, 503, codes={401: ["authentication_failed"]}, invalid=NO_PASSWORD),
    },
    examples=[
        request_example({"email": "ann@example.com", "password": "correct-horse-battery"}, "Login"),
        response_example(TOKEN_PAIR_EXAMPLE, "Token pair"),
    ],
)
class TokenObtainView(jwt_views.TokenObtainPairView):
    """The password step of a login; `logged_in` answers it (the second factor's view asks for a code there)."""

    serializer_class = PasswordLoginSerializer

    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        email = request.data.get("email") if hasattr(request.data, "get") else None
        failed_logins = FailedLoginThrottle(request, email)
        if not failed_logins.allow_request():
            self.throttled(request, failed_logins.wait())
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except AuthenticationFailed:
            failed_logins.record_failure()
            raise
        return Response(self.logged_in(serializer.user))

    def logged_in(self, user: User) -> dict[str, object]:
        """The answer to a right email and password: a token pair."""
        return token_pair_issue(user=user)


@extend_schema(
    tags=["auth"],
    summary="Refresh a JWT pair",
    description="Answers a new access token and a new refresh token; the old refresh token is blacklisted "
    "(rotation), once: of concurrent refreshes of one token, one succeeds. A rotated, blacklisted, expired or "
    "malformed refresh token, or one issued before the user's password last changed, answers 401 "
    "`authentication_failed`.",
    request=RefreshInputSerializer,
    responses={
        200: success(
            TokenPairOutputSerializer,
            "A new access token and a new refresh token; the old refresh token no longer works.",
        ),
        **error_responses(400, 401, 429, 503, codes={401: ["authentication_failed"]}, invalid=NO_REFRESH),
    },
    examples=[request_example({"refresh": REFRESH_EXAMPLE}), response_example(TOKEN_PAIR_EXAMPLE, "Rotated pair")],
)
class TokenRefreshView(jwt_views.TokenRefreshView):
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = RefreshInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(token_pair_rotate(refresh=serializer.validated_data["refresh"]))


@extend_schema(tags=["auth"])
class LogoutView(APIView):
    @extend_schema(
        summary="Log out",
        description="Blacklists the caller's refresh token; later refreshes with it answer 401. Answers 205 with "
        "no body. The refresh token must be the caller's own (403 otherwise); an invalid one answers 401.",
        request=RefreshInputSerializer,
        responses={
            205: OpenApiResponse(description="Logged out; the refresh token is blacklisted. No body."),
            **error_responses(400, 401, 403, 429, 503, invalid=NO_REFRESH),
        },
        examples=[request_example({"refresh": REFRESH_EXAMPLE})],
    )
    def post(self, request: Request) -> Response:
        serializer = RefreshInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            token = RefreshToken(serializer.validated_data["refresh"])
        except TokenError as exc:
            raise AuthenticationFailed(str(exc)) from exc
        if str(token.get(jwt_settings.USER_ID_CLAIM)) != str(request.user.pk):
            raise PermissionDenied("This refresh token belongs to another user.")
        try:
            token.blacklist()
        except TokenError as exc:
            raise AuthenticationFailed(str(exc)) from exc
        return Response(status=HTTPStatus.RESET_CONTENT)


@extend_schema(tags=["auth"])
class MeView(APIView):
    @extend_schema(
        summary="The current user",
        description="The user of the access token.",
        responses={200: success(UserOutputSerializer, "The user."), **error_responses(401, 429, 503)},
        examples=[response_example(USER_EXAMPLE, "Me")],
    )
    def get(self, request: Request) -> Response:
        request.user.refresh_from_db()  # the token's user has only its id loaded
        return Response(UserOutputSerializer(request.user).data)
