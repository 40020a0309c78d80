"""The OpenAPI document says exactly what the server reads (docs/ARCHITECTURE.md, "The schema is the truth").

The formats and patterns are judged by jsonschema-rs, the validator Schemathesis judges requests with, against
the parsers the server uses, on spellings chosen at the edges and on many more made from them; and the server
answers 400 where the document refuses (an empty query parameter, a number where text is expected).
"""

from __future__ import annotations

import random
import re
import uuid
from http import HTTPStatus

import jsonschema_rs
import pytest
from django.test import Client
from rest_framework import serializers

from wallet_project.cursors import HISTORY_CURSOR_PATTERN, HistoryCursor
from wallet_project.fields import StrictUUIDField, parse_moment
from wallets.models import Currency

pytestmark = pytest.mark.django_db

MOMENTS = [
    "2026-11-25",
    "2026-11-25T10:05:00Z",
    "2026-11-25t10:05:00z",
    "2026-11-25T10:05:00.123456789+01:30",
    "2024-02-29T23:59:59-23:59",
    "2023-02-29",
    "2026-12-31T23:59:60Z",
    "2026-12-31T22:59:60-01:00",
    "2026-06-30T12:00:60Z",
    "0000-01-01",
    "0000-02-29T00:00:00+14:00",
    "9999-12-31T23:59:59.999999-01:00",
    "0001-01-01T00:00:00+01:00",
    "2026-11-25T10:05:00",
    "2026-11-25 10:05:00Z",
    "2026-11-25T10:05Z",
    "2026-11-25T24:00:00Z",
    "2026-11-25T10:05:00+24:00",
    "2026-11-25T10:05:00+0100",
    "2026-11-25T10:05:00.Z",
    "2026-1-25",
    "20261125",
    "２０２６-11-25",
    " 2026-11-25",
    "2026-11-25\n",
    "",
]


def _mutations(seed: int, count: int) -> list[str]:
    """Spellings made from MOMENTS by changing, dropping or doubling one character."""
    chooser = random.Random(seed)
    alphabet = "0123456789-:.+TtZz 9"
    made = []
    for _ in range(count):
        text = chooser.choice(MOMENTS[:13])
        position = chooser.randrange(len(text) + 1)
        kind = chooser.randrange(3)
        if kind == 0 and position < len(text):
            text = text[:position] + chooser.choice(alphabet) + text[position + 1 :]
        elif kind == 1:
            text = text[:position] + text[position + 1 :]
        else:
            text = text[:position] + chooser.choice(alphabet) + text[position:]
        made.append(text)
    return made


def _formats(*names: str) -> list[jsonschema_rs.Validator]:
    return [jsonschema_rs.validator_for({"type": "string", "format": name}, validate_formats=True) for name in names]


def _rfc_3339_shape(digit: str) -> re.Pattern[str]:
    return re.compile(
        f"{digit}{{4}}-{digit}{{2}}-{digit}{{2}}"
        f"([Tt]{digit}{{2}}:{digit}{{2}}:{digit}{{2}}(\\.{digit}+)?([Zz]|[+-]{digit}{{2}}:{digit}{{2}}))?"
    )


RFC_3339_SHAPE = _rfc_3339_shape("[0-9]")
# jsonschema-rs reads some punctuation as digits ("2.26-11-25T10:05:00Z", "2026-11-0+"); RFC 3339's digits are
# digits, and Schemathesis generates dates from a calendar, so it never sends such a spelling.
LENIENT_SHAPE = _rfc_3339_shape("[0-9+,./-]")


def test_dates_are_read_exactly_as_the_date_and_date_time_formats_admit_them():
    date, date_time = _formats("date", "date-time")
    for text in [*MOMENTS, *_mutations(seed=22, count=20_000)]:
        documented = date.is_valid(text) or date_time.is_valid(text)
        if RFC_3339_SHAPE.fullmatch(text):
            # The digits are digits: the calendar, the ranges, leap days and seconds decide, alike.
            assert (parse_moment(text) is not None) == documented, text
        else:
            assert parse_moment(text) is None, text
            assert not documented or LENIENT_SHAPE.fullmatch(text), text


def test_ids_in_bodies_and_queries_are_read_exactly_as_the_uuid_format_admits_them():
    (documented,) = _formats("uuid")
    field = StrictUUIDField()
    some = str(uuid.uuid4())
    spellings = [some, some.upper(), some.replace("-", ""), "{" + some + "}", "urn:uuid:" + some, some + "\n"]
    spellings += [some[:-1], some[:8] + "_" + some[9:], " " + some, "", some.replace("a", "g", 1)]
    for text in spellings:
        try:
            field.run_validation(text)
            read = True
        except serializers.ValidationError:
            read = False
        assert read == documented.is_valid(text), text


def test_cursors_are_read_exactly_as_their_pattern_admits_them():
    documented = jsonschema_rs.validator_for({"type": "string", "pattern": HISTORY_CURSOR_PATTERN})
    entry = uuid.uuid4().hex
    chooser = random.Random(5)
    tokens = ["p", "n", "", f"n0.{entry}", f"p{'9' * 17}.{entry}", f"n{'9' * 18}.{entry}", f"n01.{entry}"]
    tokens += [f"n1.{entry.upper()}", f"x1.{entry}", f"n1.{entry}\n", f"n-1.{entry}", f"n1{entry}"]
    for _ in range(5000):
        token = chooser.choice(tokens[:5])
        position = chooser.randrange(len(token) + 1)
        tokens.append(token[:position] + chooser.choice("0123456789abcdefnpx.-") + token[position + 1 :])
    for token in tokens:
        try:
            cursor = HistoryCursor.decode(token)
        except ValueError:
            cursor = None
        assert (cursor is not None) == documented.is_valid(token), token
        if cursor is not None:
            assert cursor.encode() == token


def _schema() -> dict:
    return Client().get("/api/schema/", {"format": "json"}).json()


def _query_parameters(schema: dict) -> list[tuple[str, str]]:
    """(path, name) of every query parameter of a GET without path parameters, other than `page_size`'s kin."""
    found = []
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if operation is None or "{" in path:
            continue
        found += [
            (path, parameter["name"]) for parameter in operation.get("parameters", []) if parameter["in"] == "query"
        ]
    return found


def test_every_query_parameter_given_empty_is_refused_like_any_value_it_does_not_admit(api):
    parameters = _query_parameters(_schema())
    assert len(parameters) >= 15, parameters

    for path, name in parameters:
        response = api.get(f"{path}?{name}=")

        assert response.status_code == HTTPStatus.BAD_REQUEST, (path, name, response.content)
        assert list(response.json()["error"]["details"]) == [name], (path, name)


NOT_TEXT = [0, 1.5, True, ["x"], {"x": "y"}]
TEXT_FIELDS = [
    ("/api/v1/wallets/", {"name": "Travel"}, "name"),
    ("/api/v1/transactions/deposit/", {"amount": "1", "wallet_balance_id": str(uuid.uuid4())}, "description"),
    (
        "/api/v1/transactions/payment/",
        {"amount": "1", "wallet_balance_id": str(uuid.uuid4()), "merchant": "M"},
        "merchant",
    ),
    ("/api/v1/holds/", {"amount": "1", "wallet_balance_id": str(uuid.uuid4())}, "merchant"),
    ("/api/v1/auth/register/", {"email": "ann@example.com", "password": "correct-horse-9", "name": "Ann"}, "name"),
    ("/api/v1/auth/register/", {"email": "ann@example.com", "password": "correct-horse-9", "name": "Ann"}, "password"),
    ("/api/v1/auth/token/", {"email": "ann@example.com", "password": "correct-horse-9"}, "email"),
    ("/api/v1/auth/token/refresh/", {"refresh": "x"}, "refresh"),
    ("/api/v1/auth/mfa/totp/confirm/", {"code": "123456"}, "code"),
]


@pytest.mark.parametrize(("path", "body", "field"), TEXT_FIELDS)
@pytest.mark.parametrize("value", NOT_TEXT, ids=repr)
def test_a_json_value_that_is_not_a_string_where_text_is_expected_is_400_not_read_as_text(
    api, path, body, field, value
):
    response = api.post(path, {**body, field: value}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST, (path, field, value, response.content)
    assert list(response.json()["error"]["details"]) == [field]


def test_the_known_currencies_follow_the_table_when_the_document_is_made():
    Currency.objects.create(code="CHE", name="WIR Euro", minor_unit=2)
    schema = _schema()

    total = schema["paths"]["/api/v1/wallets/{id}/total-balance/"]["get"]["parameters"]
    (currency,) = [parameter for parameter in total if parameter["name"] == "currency"]
    assert "CHE" in currency["schema"]["enum"]
    assert currency["schema"]["enum"] == sorted(Currency.objects.values_list("code", flat=True))
    assert currency["schema"]["pattern"] == "^[A-Z]{3}$"


def test_a_delete_that_reads_a_body_documents_it():
    paths = _schema()["paths"]

    body = paths["/api/v1/auth/mfa/totp/"]["delete"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/CodeInputRequest")
    # The webhook endpoint's DELETE reads nothing, and says so.
    assert "requestBody" not in paths["/api/v1/webhook-endpoints/{id}/"]["delete"]


def test_patterns_use_classes_that_ecma_262_and_python_read_alike():
    patterns = set()
    for component in _schema()["components"]["schemas"].values():
        for prop in component.get("properties", {}).values():
            for option in [prop, *prop.get("oneOf", []), *prop.get("anyOf", [])]:
                if "pattern" in option:
                    patterns.add(option["pattern"])
    assert len(patterns) >= 8, patterns
    # `\d`, `\w` and `\s` mean other sets of characters in the two dialects; the document spells classes out.
    assert [pattern for pattern in patterns if re.search(r"\\[dwsDWS]", pattern)] == []


def test_the_mutated_dates_reach_both_verdicts():
    date, date_time = _formats("date", "date-time")
    sample = _mutations(seed=22, count=2000)

    assert {date.is_valid(text) or date_time.is_valid(text) for text in sample} == {True, False}
