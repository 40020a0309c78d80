"""OpenAPI helpers: the error shape, the error responses each operation can give, and examples."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from wallet_project.errors import DomainError

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
    403: "Authenticated but not allowed.",
    404: "No such resource visible to the caller (`not_found`).",
    409: "Conflict with the current state.",
    413: "`payload_too_large`: the body is over the upload limit (`details.max_bytes`); nothing was read.",
    422: "A valid request that the rules refuse.",
    429: "Too many requests; retry after the seconds in the `Retry-After` header.",
    503: "`service_unavailable`: the database (or, for a money movement, Redis) cannot be reached; "
    "answered at once, nothing was written. See `Retry-After`.",
}

_DEFAULT_CODES = {
    400: ["validation_error"],
    401: ["not_authenticated", "authentication_failed"],
    403: ["permission_denied"],
    404: ["not_found"],
    413: ["payload_too_large"],
    429: ["throttled"],
    503: ["service_unavailable"],
}

# What each code says, for the examples: the domain errors' own messages, and DRF's.
_MESSAGES: dict[str, str] = {
    "validation_error": "The request is invalid; see details.",
    "not_authenticated": "Authentication credentials were not provided.",
    "authentication_failed": "Given token not valid for any token type",
    "throttled": "Request was throttled. Expected available in 1 second.",
}


def _messages() -> dict[str, str]:
    found: dict[str, str] = {}
    pending = list(DomainError.__subclasses__())
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls.default_message)
        pending.extend(cls.__subclasses__())
    return {**found, **_MESSAGES}


def error_responses(
    *statuses: int,
    codes: dict[int, list[str]] | None = None,
    invalid: dict[str, list[str]] | None = None,
) -> dict[int, OpenApiResponse]:
    """The documented error responses of an operation, each in the contract's error shape.

    `codes` names the error codes a status can carry here (409 and 422 always need them);
    each code gets its own example. `invalid` is the 400 example's `details` (field → messages).
    """
    codes = codes or {}
    details = {"validation_error": invalid or {"non_field_errors": ["Invalid data."]}}
    messages = _messages()
    responses = {}
    for status in statuses:
        status_codes = codes.get(status) or _DEFAULT_CODES.get(status)
        if not status_codes:
            raise ValueError(f"error_responses: name the codes of {status}")
        described = _DESCRIPTIONS[status] + " Codes: " + ", ".join(f"`{code}`" for code in status_codes) + "."
        responses[status] = OpenApiResponse(
            response=ErrorSerializer,
            description=described,
            examples=[
                OpenApiExample(
                    code,
                    value={
                        "error": {
                            "code": code,
                            "message": messages.get(code, "The request was refused."),
                            "details": details.get(code, {}),
                        }
                    },
                    response_only=True,
                    status_codes=[str(status)],
                )
                for code in status_codes
            ],
        )
    return responses


def request_example(value: Any, name: str = "Request") -> OpenApiExample:
    """An example request body."""
    return OpenApiExample(name, value=value, request_only=True)


def response_example(value: Any, name: str = "Success", status: int = 200) -> OpenApiExample:
    """An example success body; for a list operation give one item (it is wrapped in the list or page)."""
    return OpenApiExample(name, value=value, response_only=True, status_codes=[str(status)])


def success(response: Any, description: str) -> OpenApiResponse:
    """A success response with its description (what the body is), for the documentation's readers."""
    return OpenApiResponse(response=response, description=description)


def lib_doc_excludes() -> list[type]:
    """drf-spectacular's GET_LIB_DOC_EXCLUDES: library classes, plus our own base classes.

    A class listed here and everything above it contribute no docstring to a component's
    description, so a serializer without a docstring of its own is described by nothing
    rather than by the notes of the machinery it inherits.
    """
    from drf_spectacular.plumbing import get_lib_doc_excludes

    from wallet_project.quick_input import QuickSerializer

    return [*get_lib_doc_excludes(), QuickSerializer]


# Operations that create an object, linked (OpenAPI `links`) to the operations that take its id:
# (method, path of the creating operation, status) → {link name: (operationId, path parameter)}.
CREATED_OBJECT_LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str]]] = {
    ("post", "/api/v1/holds/", "201"): {
        "GetHold": ("api_v1_holds_retrieve", "id"),
        "CaptureHold": ("api_v1_holds_capture_create", "id"),
        "VoidHold": ("api_v1_holds_void_create", "id"),
    },
    ("post", "/api/v1/webhook-endpoints/", "201"): {
        "GetWebhookEndpoint": ("api_v1_webhook_endpoints_retrieve", "id"),
        "ChangeWebhookEndpoint": ("api_v1_webhook_endpoints_partial_update", "id"),
        "DeleteWebhookEndpoint": ("api_v1_webhook_endpoints_destroy", "id"),
        "RotateWebhookSecret": ("api_v1_webhook_endpoints_rotate_secret_create", "id"),
        "ListWebhookDeliveries": ("api_v1_webhook_endpoints_deliveries_list", "id"),
    },
}


# Answers that start something another operation finishes, linked to it with what its request body takes from
# the answer: (method, path, status) → {link name: (operationId, {body field: answer field})}.
REQUEST_BODY_LINKS: dict[tuple[str, str, str], dict[str, tuple[str, dict[str, str]]]] = {
    # A login that answers `mfa_required` is finished by the second step, with its `mfa_token`.
    ("post", "/api/v1/auth/token/", "200"): {
        "CompleteLoginWithCode": ("api_v1_auth_token_mfa_create", {"mfa_token": "mfa_token"}),
    },
    # A pending authenticator app is confirmed with a code it shows (the caller's own: nothing to pass).
    ("post", "/api/v1/auth/mfa/totp/", "201"): {
        "ConfirmApp": ("api_v1_auth_mfa_totp_confirm_create", {}),
    },
}


def add_created_object_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """A postprocessing hook: the `links` of CREATED_OBJECT_LINKS, each passing the new object's `id`
    (`$response.body#/id`) to an operation that uses it, and of REQUEST_BODY_LINKS, each passing fields of the
    answer to the body of the operation that finishes it. drf-spectacular has no decorator for links."""
    paths = result.get("paths", {})
    operation_ids = {
        operation.get("operationId")
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict)
    }
    links: list[tuple[tuple[str, str, str], str, str, dict[str, Any]]] = [
        (answer, name, operation_id, {"parameters": {parameter: "$response.body#/id"}})
        for answer, created in CREATED_OBJECT_LINKS.items()
        for name, (operation_id, parameter) in created.items()
    ]
    links += [
        (answer, name, operation_id, _passed_in_body(fields))
        for answer, finished in REQUEST_BODY_LINKS.items()
        for name, (operation_id, fields) in finished.items()
    ]
    for (method, path, status), name, operation_id, passed in links:
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            raise ValueError(f"add_created_object_links: no {status} answer of {method.upper()} {path}")
        if operation_id not in operation_ids:
            raise ValueError(f"add_created_object_links: no operation {operation_id}")
        response.setdefault("links", {})[name] = {"operationId": operation_id, **passed}
    return result


def _passed_in_body(fields: dict[str, str]) -> dict[str, Any]:
    """A link's `requestBody`: each body field from its field of the answer (none: the link passes nothing)."""
    if not fields:
        return {}
    return {"requestBody": {key: f"$response.body#/{field}" for key, field in fields.items()}}
