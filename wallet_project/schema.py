"""OpenAPI helpers: the error shape, the error responses each operation can give, examples, links, and the hooks
that finish the document (links, the known currencies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from wallet_project.errors import DomainError
from wallet_project.fields import (
    AMOUNT_DESCRIPTION,
    DECIMALS_OF_MARK,
    KNOWN_CURRENCY_MARK,
    NO_NUL_PATTERN,
    amount_schema,
)
from wallet_project.money import AMOUNT_DECIMAL_PLACES

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


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: the operation that goes on, and what it takes from the answer (`$response.body#/…`).

    `parameters` maps a path or query parameter of the target to a field of the answer (a JSON pointer below
    the body: `id`, `entry/id`); `body` maps a field of the target's request body the same way. Schemathesis
    merges `body` into the body it makes, so the other fields still vary.
    """

    operation_id: str
    parameters: dict[str, str] = field(default_factory=dict)
    body: dict[str, str] = field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        described: dict[str, Any] = {"operationId": self.operation_id}
        if self.parameters:
            described["parameters"] = {name: f"$response.body#/{source}" for name, source in self.parameters.items()}
        if self.body:
            described["requestBody"] = {name: f"$response.body#/{source}" for name, source in self.body.items()}
        return described


def _uses_a_new_balance(source: str) -> dict[str, Link]:
    """What a balance's id (the answer's field `source`) feeds: reads, every movement on it, holds, history."""
    return {
        "GetBalance": Link("api_v1_balances_retrieve", parameters={"id": source}),
        "Deposit": Link("api_v1_transactions_deposit_create", body={"wallet_balance_id": source}),
        "Withdraw": Link("api_v1_transactions_withdraw_create", body={"wallet_balance_id": source}),
        "Pay": Link("api_v1_transactions_payment_create", body={"wallet_balance_id": source}),
        "TransferFrom": Link("api_v1_transactions_transfer_create", body={"from_wallet_balance_id": source}),
        "TransferTo": Link("api_v1_transactions_transfer_create", body={"to_wallet_balance_id": source}),
        "PlaceHold": Link("api_v1_holds_create", body={"wallet_balance_id": source}),
        "ListBalanceHistory": Link("api_v1_transactions_list", parameters={"wallet_balance_id": source}),
        "ListBalanceHolds": Link("api_v1_holds_list", parameters={"wallet_balance_id": source}),
    }


def _uses_a_new_entry(source: str, *, refundable: bool) -> dict[str, Link]:
    """What a ledger entry's id (the answer's field `source`) feeds: reading it, and a staff refund of a payment
    or a capture."""
    uses = {"GetTransaction": Link("api_v1_transactions_retrieve", parameters={"id": source})}
    if refundable:
        uses["Refund"] = Link("api_v1_transactions_refund_create", parameters={"id": source})
    return uses


def _answers_with_an_entry(path: str, *, refundable: bool = False) -> dict[tuple[str, str, str], dict[str, Link]]:
    entry = _uses_a_new_entry("id", refundable=refundable)
    return {("post", path, "201"): {**entry, "GetBalance": _get_balance("wallet_balance_id")}}


def _get_balance(source: str) -> Link:
    return Link("api_v1_balances_retrieve", parameters={"id": source})


# The answers that create something (or hand out a token), linked to the operations that take it: a stateful
# client (Schemathesis's stateful phase) walks from a new wallet to its balances, their movements and holds,
# and their entries. The reads of wallets link the same way from the first wallet and its first balance, so
# that a client finds the money it already has. (method, path, status) → {link name: Link}.
LINKS: dict[tuple[str, str, str], dict[str, Link]] = {
    ("get", "/api/v1/wallets/", "200"): {
        "GetWallet": Link("api_v1_wallets_retrieve", parameters={"id": "results/0/id"}),
        "OpenBalance": Link("api_v1_wallets_balances_create", parameters={"id": "results/0/id"}),
        **_uses_a_new_balance("results/0/balances/0/id"),
    },
    ("get", "/api/v1/wallets/{id}/", "200"): {
        "OpenBalance": Link("api_v1_wallets_balances_create", parameters={"id": "id"}),
        "GetWalletTotal": Link("api_v1_wallets_total_balance_retrieve", parameters={"id": "id"}),
        **_uses_a_new_balance("balances/0/id"),
    },
    ("post", "/api/v1/wallets/", "201"): {
        "GetWallet": Link("api_v1_wallets_retrieve", parameters={"id": "id"}),
        "OpenBalance": Link("api_v1_wallets_balances_create", parameters={"id": "id"}),
        "GetWalletTotal": Link("api_v1_wallets_total_balance_retrieve", parameters={"id": "id"}),
        "ListWalletHistory": Link("api_v1_transactions_list", parameters={"wallet_id": "id"}),
    },
    ("post", "/api/v1/wallets/{id}/balances/", "201"): {
        **_uses_a_new_balance("id"),
        "GetWallet": Link("api_v1_wallets_retrieve", parameters={"id": "wallet_id"}),
    },
    **_answers_with_an_entry("/api/v1/transactions/deposit/"),
    **_answers_with_an_entry("/api/v1/transactions/withdraw/"),
    **_answers_with_an_entry("/api/v1/transactions/payment/", refundable=True),
    **_answers_with_an_entry("/api/v1/transactions/transfer/"),
    ("post", "/api/v1/transactions/{id}/refund/", "201"): {
        "GetTransaction": Link("api_v1_transactions_retrieve", parameters={"id": "id"}),
        "GetBalance": _get_balance("wallet_balance_id"),
    },
    ("post", "/api/v1/holds/", "201"): {
        "GetHold": Link("api_v1_holds_retrieve", parameters={"id": "id"}),
        "CaptureHold": Link("api_v1_holds_capture_create", parameters={"id": "id"}),
        "VoidHold": Link("api_v1_holds_void_create", parameters={"id": "id"}),
        "GetBalance": _get_balance("wallet_balance_id"),
    },
    ("post", "/api/v1/holds/{id}/capture/", "201"): {
        **_uses_a_new_entry("entry/id", refundable=True),
        "GetHold": Link("api_v1_holds_retrieve", parameters={"id": "hold/id"}),
        "CaptureHoldAgain": Link("api_v1_holds_capture_create", parameters={"id": "hold/id"}),
        "VoidHold": Link("api_v1_holds_void_create", parameters={"id": "hold/id"}),
    },
    ("post", "/api/v1/webhook-endpoints/", "201"): {
        "GetWebhookEndpoint": Link("api_v1_webhook_endpoints_retrieve", parameters={"id": "id"}),
        "ChangeWebhookEndpoint": Link("api_v1_webhook_endpoints_partial_update", parameters={"id": "id"}),
        "DeleteWebhookEndpoint": Link("api_v1_webhook_endpoints_destroy", parameters={"id": "id"}),
        "RotateWebhookSecret": Link("api_v1_webhook_endpoints_rotate_secret_create", parameters={"id": "id"}),
        "ListWebhookDeliveries": Link("api_v1_webhook_endpoints_deliveries_list", parameters={"id": "id"}),
    },
    # A login that answers `mfa_required` is finished by the second step, with its `mfa_token`; one that answers
    # tokens hands its refresh token to the refresh and to the logout.
    ("post", "/api/v1/auth/token/", "200"): {
        "CompleteLoginWithCode": Link("api_v1_auth_token_mfa_create", body={"mfa_token": "mfa_token"}),
        "RefreshTokens": Link("api_v1_auth_token_refresh_create", body={"refresh": "refresh"}),
        "LogOut": Link("api_v1_auth_logout_create", body={"refresh": "refresh"}),
    },
    ("post", "/api/v1/auth/token/mfa/", "200"): {
        "RefreshTokens": Link("api_v1_auth_token_refresh_create", body={"refresh": "refresh"}),
        "LogOut": Link("api_v1_auth_logout_create", body={"refresh": "refresh"}),
    },
    ("post", "/api/v1/auth/token/refresh/", "200"): {
        "RefreshTokens": Link("api_v1_auth_token_refresh_create", body={"refresh": "refresh"}),
        "LogOut": Link("api_v1_auth_logout_create", body={"refresh": "refresh"}),
    },
    # A pending authenticator app is confirmed with a code it shows (the caller's own: nothing to pass).
    ("post", "/api/v1/auth/mfa/totp/", "201"): {"ConfirmApp": Link("api_v1_auth_mfa_totp_confirm_create")},
}


def add_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """A postprocessing hook: the answers' `links` (LINKS). drf-spectacular has no decorator for links.

    A link from an answer or to an operation that the document does not have is a mistake in LINKS, and fails
    loudly (tests/test_api_docs.py also holds each link's parameters and body fields to its target).
    """
    paths = result.get("paths", {})
    operation_ids = {
        operation.get("operationId")
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict)
    }
    for (method, path, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            raise ValueError(f"add_links: no {status} answer of {method.upper()} {path}")
        for name, link in links.items():
            if link.operation_id not in operation_ids:
                raise ValueError(f"add_links: no operation {link.operation_id}")
            response.setdefault("links", {})[name] = link.definition()
    return result


def known_currencies() -> dict[str, int]:
    """The currencies the service knows now (code → minor unit), for the document's enums; none when the
    database cannot say (`manage.py check` or `spectacular` with no database yet): the codes keep their pattern."""
    from wallets.models import Currency

    try:
        return dict(Currency.objects.order_by("code").values_list("code", "minor_unit"))
    except DatabaseError:
        return {}


def add_known_currencies(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """A postprocessing hook: what the currencies known when the document is made (the `currencies` table,
    which staff may extend: the document follows it) say about the schemas that name one.

    A schema marked KNOWN_CURRENCY_MARK gets their codes as its `enum`. A body whose amount is marked
    DECIMALS_OF_MARK (naming the body's currency field) gets an `anyOf` with one branch per minor unit: these
    currencies, an amount with at most that many decimals.
    """
    currencies = known_currencies()

    def mark(node: Any) -> None:
        if isinstance(node, dict):
            # No currency at all (an empty table) leaves the pattern alone: an `enum` must list something.
            if node.pop(KNOWN_CURRENCY_MARK, False) and currencies:
                node["enum"] = list(currencies)
            for value in node.values():
                mark(value)
        elif isinstance(node, list):
            for value in node:
                mark(value)

    mark(result)
    for component in result.get("components", {}).get("schemas", {}).values():
        for name, prop in component.get("properties", {}).items():
            currency_field = prop.pop(DECIMALS_OF_MARK, None)
            if currency_field is not None and currencies:
                component["anyOf"] = _amount_by_minor_unit(currencies, currency_field, name, prop)
    return result


def _amount_by_minor_unit(
    currencies: dict[str, int], currency_field: str, amount_field: str, amount: dict[str, Any]
) -> list[dict[str, Any]]:
    allow_zero = "exclusiveMinimum" not in amount["anyOf"][1]
    branches = []
    for minor_unit in sorted(set(currencies.values())):
        branch_amount = {"anyOf": amount_schema(allow_zero=allow_zero, decimals=minor_unit)["anyOf"]}
        if amount.get("nullable"):
            branch_amount["nullable"] = True
        codes = [code for code, unit in currencies.items() if unit == minor_unit]
        branches.append({"properties": {currency_field: {"enum": codes}, amount_field: branch_amount}})
    return branches


class AmountExtension(OpenApiSerializerFieldExtension):
    """An AmountField's schema: `amount_schema`, marked when the decimals depend on the body's currency."""

    target_class = "wallet_project.fields.AmountField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> Any:
        field = self.target
        schema = {
            **amount_schema(allow_zero=field.allow_zero),
            "description": AMOUNT_DESCRIPTION.format(
                range="0 or more" if field.allow_zero else "more than 0", places=AMOUNT_DECIMAL_PLACES
            ),
        }
        if field.decimals_of is not None:
            schema[DECIMALS_OF_MARK] = field.decimals_of
        return schema


class StrictTextExtension(OpenApiSerializerFieldExtension):
    """A StrictCharField's schema says that it holds no NUL character, beside its lengths."""

    target_class = "wallet_project.fields.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        schema.setdefault("pattern", NO_NUL_PATTERN)
        return schema


class WalletAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema; a DELETE that declares its own request body documents it too.

    drf-spectacular documents bodies only for PUT, PATCH and POST, but `DELETE /api/v1/auth/mfa/totp/` reads a
    code from its body: without it in the document, a client (or Schemathesis) would send none and be refused.
    """

    def _get_request_body(self, direction: str = "request") -> Any:
        if self.method != "DELETE" or not self._declares_its_own_request():
            return super()._get_request_body(direction)
        self.method = "POST"  # the method drf-spectacular documents a body for; restored below
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"

    def _declares_its_own_request(self) -> bool:
        declared = self.get_request_serializer()
        # A plain APIView has no serializer of its own (asking drf-spectacular for it logs an error).
        inherited = AutoSchema.get_request_serializer(self) if hasattr(self.view, "get_serializer") else None
        return declared is not None and _serializer_class(declared) is not _serializer_class(inherited)


def _serializer_class(serializer: Any) -> Any:
    return serializer if serializer is None or isinstance(serializer, type) else type(serializer)
