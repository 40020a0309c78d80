"""OpenAPI helpers: the error shape and the error responses each operation can give."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)

_DESCRIPTIONS = {
    400: "Invalid input (`validation_error`); `details` maps each field to its messages.",
    401: "No credentials (`not_authenticated`) or bad ones (`authentication_failed`).",
    403: "Authenticated but not allowed (`permission_denied`).",
    404: "No such resource visible to the caller (`not_found`).",
    409: "Conflict with the current state.",
    422: "A valid request that the rules refuse.",
    429: "`lock_timeout` (the balance stayed busy) or `throttled`; see `Retry-After`.",
    503: "`service_unavailable`: a dependency is down; nothing was written.",
}


def error_responses(*statuses: int, codes: dict[int, list[str]] | None = None) -> dict[int, OpenApiResponse]:
    """The documented error responses of an operation, each in the contract's error shape."""
    codes = codes or {}
    responses = {}
    for status in statuses:
        described = _DESCRIPTIONS[status]
        if status in codes:
            described += " Codes: " + ", ".join(f"`{code}`" for code in codes[status]) + "."
        example_code = codes.get(status, [_default_code(status)])[0]
        responses[status] = OpenApiResponse(
            response=ErrorSerializer,
            description=described,
            examples=[
                OpenApiExample(
                    example_code,
                    value={"error": {"code": example_code, "message": "…", "details": {}}},
                    response_only=True,
                    status_codes=[str(status)],
                )
            ],
        )
    return responses


def _default_code(status: int) -> str:
    return {
        400: "validation_error",
        401: "not_authenticated",
        403: "permission_denied",
        404: "not_found",
        429: "throttled",
        503: "service_unavailable",
    }.get(status, "error")
