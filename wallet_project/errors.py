"""The domain errors and the one exception handler that gives every error the contract's shape.

Every error body is `{"error": {"code", "message", "details"}}` (see API.md).
Domain rules raise a subclass of `DomainError`; the handler also reshapes
DRF's own exceptions, database and Redis outages (503) and crashes (500,
logged with the request id, nothing internal in the body).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import redis.exceptions
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger("wallet.errors")


class DomainError(Exception):
    """A refusal by a rule of the service; `status_code` and `code` come from the contract."""

    status_code: int = HTTPStatus.UNPROCESSABLE_ENTITY
    code: str = "unprocessable"
    default_message: str = "The request was refused."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        return {}


class InvalidInput(DomainError):
    """Input that only the service can judge invalid (e.g. decimals beyond the currency's minor unit)."""

    status_code = HTTPStatus.BAD_REQUEST
    code = "validation_error"
    default_message = "The request is invalid."


class PayloadTooLarge(DomainError):
    """A request body over `DATA_UPLOAD_MAX_MEMORY_SIZE`."""

    status_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"
    default_message = "The request body is larger than this service accepts."

    @classmethod
    def for_limit(cls, limit: int | None) -> PayloadTooLarge:
        if limit is None:
            return cls()
        return cls(
            f"The request body is larger than the {limit} bytes this service accepts.", details={"max_bytes": limit}
        )


class NotFound(DomainError):
    status_code = HTTPStatus.NOT_FOUND
    code = "not_found"
    default_message = "Not found."


class InactiveAccount(DomainError):
    """The account acting was deactivated; its credentials, though unexpired, move and create nothing."""

    status_code = HTTPStatus.UNAUTHORIZED
    code = "authentication_failed"
    default_message = "This account is deactivated."


class PermissionDenied(DomainError):
    status_code = HTTPStatus.FORBIDDEN
    code = "permission_denied"
    default_message = "You do not have permission to perform this action."


class MfaRequired(DomainError):
    """A movement beyond the step-up amount, asked with an access token whose second factor is missing or too old
    (`details.reason`: `not_enrolled`, no authenticator app yet, or `stale`)."""

    status_code = HTTPStatus.FORBIDDEN
    code = "mfa_required"
    default_message = "This movement needs a recent second factor: log in again with your authenticator code."


class SecondFactorRefused(DomainError):
    """A login's second step with a wrong, used or expired code, or an `mfa_token` that is unknown or used up."""

    status_code = HTTPStatus.UNAUTHORIZED
    code = "authentication_failed"
    default_message = "The code is not valid."


class MfaAlreadyEnabled(DomainError):
    status_code = HTTPStatus.CONFLICT
    code = "mfa_already_enabled"
    default_message = "Two-factor authentication is already on; turn it off first to enrol another app."


class MfaNotEnabled(DomainError):
    status_code = HTTPStatus.CONFLICT
    code = "mfa_not_enabled"
    default_message = "Two-factor authentication is not on."


class EmailTaken(DomainError):
    status_code = HTTPStatus.CONFLICT
    code = "email_taken"
    default_message = "A user with this email already exists."


class WalletExists(DomainError):
    status_code = HTTPStatus.CONFLICT
    code = "wallet_exists"
    default_message = "You already have a wallet with this name."


class BalanceExists(DomainError):
    status_code = HTTPStatus.CONFLICT
    code = "balance_exists"
    default_message = "This wallet already holds a balance in this currency."


class IdempotencyInProgress(DomainError):
    status_code = HTTPStatus.CONFLICT
    code = "idempotency_in_progress"
    default_message = "A request with this Idempotency-Key is still being processed."


class InsufficientFunds(DomainError):
    code = "insufficient_funds"
    default_message = "The balance does not hold enough money."


class SameBalance(DomainError):
    code = "same_balance"
    default_message = "A transfer needs two different balances."


class RateUnavailable(DomainError):
    code = "rate_unavailable"
    default_message = "There is no current exchange rate for this pair of currencies."


class AmountTooSmall(DomainError):
    code = "amount_too_small"
    default_message = "The converted amount rounds down to zero."


class WalletFrozen(DomainError):
    code = "wallet_frozen"
    default_message = "The wallet is frozen; no money may move into or out of it."


class NotRefundable(DomainError):
    code = "not_refundable"
    default_message = "Only payments and captures can be refunded."


class HoldNotActive(DomainError):
    """The hold was already captured, voided or expired: it is resolved exactly once."""

    code = "hold_not_active"
    default_message = "The hold is no longer active."


class HoldExpired(DomainError):
    code = "hold_expired"
    default_message = "The hold has expired; it can no longer be captured."


class CaptureExceedsHold(DomainError):
    code = "capture_exceeds_hold"
    default_message = "The capture exceeds what the hold still reserves."


class RefundExceedsPayment(DomainError):
    code = "refund_exceeds_payment"
    default_message = "The refund exceeds what is left to refund of the payment."


class TooManyWebhookEndpoints(DomainError):
    code = "too_many_webhook_endpoints"
    default_message = "You have as many webhook endpoints as a user may have; delete one first."


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was used with another endpoint or request."


class LockTimeout(DomainError):
    """The balance stayed locked by other movements past the lock wait."""

    status_code = HTTPStatus.TOO_MANY_REQUESTS
    code = "lock_timeout"
    default_message = "The balance is busy with other movements; retry shortly."
    retry_after_seconds = 1

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class ServiceUnavailable(DomainError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"
    default_message = "The service is temporarily unavailable; nothing was written. Retry shortly."

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> JsonResponse:
    """A plain Django response in the contract's shape, for errors raised outside DRF views."""
    return JsonResponse(error_body(code, message, details), status=status)


_DRF_CODES: dict[type[drf_exceptions.APIException], str] = {
    drf_exceptions.ParseError: "validation_error",
    drf_exceptions.ValidationError: "validation_error",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
}

_DRF_MESSAGES: dict[str, str] = {
    "validation_error": "The request is invalid; see details.",
    "not_found": "Not found.",
}


def _drf_code(exc: drf_exceptions.APIException) -> str:
    for cls in type(exc).__mro__:
        if cls in _DRF_CODES:
            return _DRF_CODES[cls]
    return "error"


def _flatten(detail: Any) -> Any:
    """Turn DRF's ErrorDetail trees into plain strings, lists and dicts."""
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def _validation_details(detail: Any) -> dict[str, Any]:
    flat = _flatten(detail)
    if isinstance(flat, dict):
        return {key: value if isinstance(value, (list, dict)) else [value] for key, value in flat.items()}
    if isinstance(flat, list):
        return {"non_field_errors": flat}
    return {"non_field_errors": [flat]}


def _message_of(detail: Any) -> str:
    flat = _flatten(detail)
    if isinstance(flat, str):
        return flat
    if isinstance(flat, dict):
        # simplejwt's InvalidToken carries {"detail", "code", "messages"}.
        if "detail" in flat and isinstance(flat["detail"], str):
            return flat["detail"]
    return ""


def _is_outage(exc: Exception) -> bool:
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    # READONLY: a write reached a primary that has been demoted to a replica (a failover under way).
    return isinstance(
        exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError)
    )


def _input_refusal(exc: Exception, request: Any) -> Exception:
    """A body or request the service cannot read, as the client's error (logged as a warning, no traceback).

    Django raises `RequestDataTooBig` (and its other `SuspiciousOperation`s)
    from inside the view when DRF reads the body; left alone they would be 500s.
    """
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge.for_limit(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    elif isinstance(exc, SuspiciousOperation):
        exc = drf_exceptions.ParseError("The request could not be read.")
    if isinstance(exc, (PayloadTooLarge, drf_exceptions.ParseError)):
        logger.warning(
            "malformed request",
            extra={
                "error": type(exc).__name__,
                "reason": str(getattr(exc, "detail", exc)),  # our own words: a message never echoes the body
                "request_id": getattr(request, "request_id", None),
            },
        )
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: the contract's error shape for every exception."""
    request = context.get("request")
    exc = _input_refusal(exc, request)
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code, headers=exc.headers())
    if isinstance(exc, get_user_model().DoesNotExist):
        # The user of a valid access token was deleted (see wallet_project.authentication).
        exc = drf_exceptions.AuthenticationFailed("The user of this token no longer exists.")
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)  # also calls set_rollback()
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        code = _drf_code(exc)
        if code == "validation_error":
            details = _validation_details(exc.detail)
            if isinstance(exc, drf_exceptions.ParseError):
                details = {"non_field_errors": [_message_of(exc.detail) or "Malformed request body."]}
            message = _DRF_MESSAGES[code]
        else:
            details = {}
            message = _message_of(exc.detail) or _DRF_MESSAGES.get(code, "Request refused.")
        response.data = error_body(code, message, details)
        return response

    set_rollback()
    if _is_outage(exc):
        logger.warning(
            "dependency unavailable",
            extra={"error": type(exc).__name__, "request_id": getattr(request, "request_id", None)},
        )
        outage = ServiceUnavailable()
        return Response(error_body(outage.code, outage.message), status=outage.status_code, headers=outage.headers())
    logger.exception("unhandled error", extra={"request_id": getattr(request, "request_id", None)})
    return Response(
        error_body("internal_error", "Something went wrong on our side; it has been logged."),
        status=HTTPStatus.INTERNAL_SERVER_ERROR,
    )
