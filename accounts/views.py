"""Registration and JWT endpoints (API.md, "Authentication")."""

from __future__ import annotations

from http import HTTPStatus

from django.core.exceptions import ObjectDoesNotExist
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.serializers import (
    RefreshInputSerializer,
    RegisterInputSerializer,
    TokenPairOutputSerializer,
    UserOutputSerializer,
)
from accounts.services import user_create
from wallet_project.errors import PermissionDenied
from wallet_project.schema import error_responses
from wallet_project.throttling import FailedLoginThrottle


class RegisterView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        tags=["auth"],
        summary="Register a user",
        description="Creates a user whose login is the email (case-insensitive). "
        "The password goes through the password validators.",
        request=RegisterInputSerializer,
        responses={201: UserOutputSerializer, **error_responses(400, 409, codes={409: ["email_taken"]})},
        examples=[
            OpenApiExample(
                "Register",
                value={"email": "ann@example.com", "password": "correct-horse-battery", "name": "Ann"},
                request_only=True,
            )
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
    description="Exchanges email and password for an access token and a refresh token.",
    responses={200: TokenPairOutputSerializer, **error_responses(400, 401, 429)},
    examples=[
        OpenApiExample(
            "Login", value={"email": "ann@example.com", "password": "correct-horse-battery"}, request_only=True
        )
    ],
)
class TokenObtainView(jwt_views.TokenObtainPairView):
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        failed_logins = FailedLoginThrottle()
        if not failed_logins.allow_request(request, self):
            self.throttled(request, failed_logins.wait())
        try:
            return super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            failed_logins.record_failure(request, self)
            raise


@extend_schema(
    tags=["auth"],
    summary="Refresh a JWT pair",
    description="Answers a new access token and a new refresh token; the old refresh token is blacklisted "
    "(rotation). A rotated, blacklisted, expired or malformed refresh token answers 401.",
    responses={200: TokenPairOutputSerializer, **error_responses(400, 401)},
)
class TokenRefreshView(jwt_views.TokenRefreshView):
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ObjectDoesNotExist as exc:  # the token's user was deleted
            raise AuthenticationFailed("The user of this token no longer exists.") from exc


class LogoutView(APIView):
    @extend_schema(
        tags=["auth"],
        summary="Log out",
        description="Blacklists the caller's refresh token; later refreshes with it answer 401.",
        request=RefreshInputSerializer,
        responses={205: None, **error_responses(400, 401, 403)},
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


class MeView(APIView):
    @extend_schema(
        tags=["auth"],
        summary="The current user",
        description="The user of the access token.",
        responses={200: UserOutputSerializer, **error_responses(401)},
    )
    def get(self, request: Request) -> Response:
        request.user.refresh_from_db()  # the token's user has only its id loaded
        return Response(UserOutputSerializer(request.user).data)
