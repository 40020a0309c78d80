"""JWT authentication without a database round trip per request.

simplejwt's `JWTAuthentication` loads the user row on every request; on a
money movement that is one statement in six. Here the user is built from the
token's `user_id` alone, with every other field deferred: code that needs
more (`is_staff` for refunds, `email` for `me`) loads it on first use, once.

What this trades, and how it is held:

* A deactivated user's access token (15 minutes by default) is not refused
  at authentication. Every service that books or creates reads the actor's
  `is_active` where it reads its facts (for a movement, in the same
  statement as the locked balances) and answers 401 `authentication_failed`,
  PostgreSQL refuses a ledger entry of an inactive actor, and refresh refuses
  inactive users. Reads stay open to such a token until it expires.
* A deleted user's token answers 401 where a deferred field is loaded (see
  `wallet_project.errors`) or where a write would reference the user.

Each worker also remembers the access tokens it has validated (signature,
type, `jti`), up to `_VALIDATED_MAX` of them: a client sends the same token
for up to 15 minutes, and checking its HMAC, base64 and JSON again on every
request was a tenth of a transfer's Python time. Only `exp` can change a
valid access token's verdict (simplejwt blacklists refresh tokens, never
access tokens), and it is checked again on every request. The key is the whole
token as sent, so a token that differs in any byte is validated afresh.
"""

from __future__ import annotations

from time import time as _now
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

_VALIDATED_MAX = 1_000  # about a kilobyte each
# raw token -> (the validated token, its `exp` as a Unix time, plus simplejwt's leeway)
_validated: dict[bytes, tuple[Token, float]] = {}


class StatelessJWTAuthentication(JWTAuthentication):
    def get_validated_token(self, raw_token: bytes) -> Token:
        known = _validated.get(raw_token)
        if known is not None and _now() < known[1]:
            return known[0]
        token = super().get_validated_token(raw_token)  # raises for an invalid or expired token
        if len(_validated) >= _VALIDATED_MAX:
            _validated.clear()
        leeway = token.get_token_backend().get_leeway().total_seconds()
        _validated[raw_token] = (token, float(token["exp"]) + leeway)
        return token

    def get_user(self, validated_token: Token):  # type: ignore[override]
        try:
            user_id = UUID(str(validated_token[api_settings.USER_ID_CLAIM]))
        except (KeyError, ValueError) as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        return get_user_model().from_db(DEFAULT_DB_ALIAS, ["id"], [user_id])


JWT_SCHEME_DESCRIPTION = (
    "An access token from `POST /api/v1/auth/token/` (email and password), sent as "
    "`Authorization: Bearer <access>`. In the Authorize dialog paste the `access` value alone. "
    "It lasts 15 minutes by default; get a new pair with `POST /api/v1/auth/token/refresh/`."
)


class StatelessJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme (Swagger UI's Authorize button) for our JWT authentication."""

    target_class = "wallet_project.authentication.StatelessJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {**super().get_security_definition(auto_schema), "description": JWT_SCHEME_DESCRIPTION}
