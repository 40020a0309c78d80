"""Schemathesis hooks for `st run` against this service (loaded through SCHEMATHESIS_HOOKS or schemathesis.toml).

One check: `positive_data_acceptance_within_the_contract`, which stands in for Schemathesis's own
`positive_data_acceptance` (the run excludes that one; tests/test_schemathesis_cli.py says why). It is the same
check, and fails on the same answers, except for the refusals the contract (../shared/API.md and the issues it
takes in) mandates for requests that no schema can tell from good ones, because what decides is the state of the
service or of the world, not the request's text:

- 422, "a valid request that the rules refuse": funds, a frozen wallet, a missing rate, a hold no longer active.
- 400 for an amount with more decimals than the currency of the balance it names (API.md: "has more decimals than
  its currency allows ... is refused with 400 validation_error (in details.amount)"): the body names a balance,
  not a currency, so its schema admits the most decimals any currency has.
- 400 for a webhook URL whose host may not be called (issue 17: https only, never a loopback, private,
  link-local or metadata address, "checked when registered ... after DNS resolution"): what a name resolves to.
- 400 for a new password that Django's validators refuse as common, numeric or like the email or the name (API.md:
  "Passwords go through Django's password validators"); the schema states their length.
- 400 for a one-time code that is not the authenticator's current one (issue 18): the code is a pattern, its
  value a secret and a clock.
- 400 for an events feed's `after` that is not one of the caller's events (issue 17's cursor, an event id of the
  caller's feed).

Each is recognised by its status, its operation and its error body (the field, and the service's own words), so
that anything else a schema-valid request meets still fails the check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

UNPROCESSABLE = 422
BAD_REQUEST = 400

_PRECISION = re.compile(r"[A-Z]{3} (allows at most [0-9] decimal places|has no minor unit; send a whole number)\.")
_PASSWORD_RULES = re.compile(
    r"This password is too common\.|This password is entirely numeric\.|The password is too similar to the .+\."
)
_WRONG_CODE = "The code is not valid: it is wrong, expired or already used."
_NOT_YOUR_EVENT = "No event of yours has this id; use an id from this feed."
_WEBHOOK_ENDPOINTS = re.compile(r"(POST|PATCH) /api/v1/webhook-endpoints/(\{id\}/)?")


# What a statement's period may be refused for (transactions/statements/serializers.py).
_PERIOD_RULES = frozenset(
    {"The period must end after it starts.", "A statement covers at most 366 days.", "The period starts in the future."}
)


def _details(response: Any) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return details if isinstance(details, dict) and details else None


def _messages(details: dict[str, Any], field: str) -> list[str] | None:
    """The messages of `field` when it is the only one refused, else None."""
    messages = details.get(field)
    if set(details) != {field} or not isinstance(messages, list) or not messages:
        return None
    return messages if all(isinstance(message, str) for message in messages) else None


def _only_precision(details: Any) -> bool:
    """Every refusal in `details` is an amount's precision (also nested, as a batch names its items)."""
    if not isinstance(details, dict) or not details:
        return False
    for key, value in details.items():
        if key in ("amount", "initial_amount"):
            if not (isinstance(value, list) and value and all(_PRECISION.fullmatch(str(text)) for text in value)):
                return False
        elif key == "index" and isinstance(value, int):
            continue
        elif not _only_precision(value):
            return False
    return True


def _all(messages: list[str] | None, rule: Callable[[str], bool]) -> bool:
    return messages is not None and all(rule(message) for message in messages)


def refused_by_a_rule_no_schema_states(operation: str, status: int, details: dict[str, Any] | None) -> bool:
    """Whether a refusal of a schema-valid request is one the contract mandates (see the module's docstring)."""
    if status == UNPROCESSABLE:
        return True
    if status != BAD_REQUEST or details is None:
        return False
    if _only_precision(details):
        return True
    if _WEBHOOK_ENDPOINTS.fullmatch(operation):
        return _messages(details, "url") is not None
    if operation == "POST /api/v1/auth/register/":
        return _all(_messages(details, "password"), lambda message: bool(_PASSWORD_RULES.fullmatch(message)))
    if operation.startswith(("POST /api/v1/auth/mfa/", "DELETE /api/v1/auth/mfa/")):
        return _messages(details, "code") == [_WRONG_CODE]
    if operation == "GET /api/v1/events/":
        return _messages(details, "after") == [_NOT_YOUR_EVENT]
    if operation == "GET /api/v1/balances/{id}/statement/":
        # A period is from < to, at most 366 days, not starting in the future: rules across two parameters.
        return any(_all(_messages(details, name), _PERIOD_RULES.__contains__) for name in ("from", "to"))
    return False


@schemathesis.check
def positive_data_acceptance_within_the_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis's `positive_data_acceptance`, but for the refusals the contract mandates (module docstring)."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        operation = f"{case.operation.method.upper()} {case.operation.path}"
        if refused_by_a_rule_no_schema_states(operation, response.status_code, _details(response)):
            return None
        raise
