"""`GET balances/{id}/statement/`: every entry of a period, its totals and its arithmetic, in JSON and CSV.

The PDF has its own module (test_statements_pdf.py); streaming, the memory
bound and the check that aborts a statement, test_statements_streaming.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.utils import timezone

from conftest import error_code
from tests.factories import BalanceFactory, WalletFactory, funded_balance
from transactions.models import Transaction
from transactions.tests.ledger_builder import book_many, book_other_types
from transactions.tests.statement_reading import (
    a_second_around,
    body_of,
    csv_summary,
    expected_summary,
    json_summary,
    period,
    statement_url,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_balance(user, staff_user):
    """A USD balance of the user with a few thousand entries of every everyday type."""
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user, name="Everyday"))
    book_other_types(balance, funded_balance(amount="50.00", currency="EUR"), staff_user)
    book_many(balance, 3000)
    return balance


def _entries(balance) -> list[Transaction]:
    return list(Transaction.objects.filter(wallet_balance=balance).order_by("sequence"))


def _check_arithmetic(summary) -> None:
    assert summary.opening + summary.credits - summary.debits == summary.closing
    assert sum(count for count, _ in summary.totals.values()) == len(summary.sequences)
    assert summary.sequences == list(range(summary.sequences[0], summary.sequences[0] + len(summary.sequences)))


def test_a_json_statement_has_every_entry_of_the_period_and_adds_up(user, api, busy_balance):
    entries = _entries(busy_balance)
    start, end = a_second_around(entries)

    response = api.get(statement_url(busy_balance), period(start, end))

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "application/json"
    document, summary = json_summary(body_of(response))
    assert summary == expected_summary(busy_balance, start, end)
    assert len(summary.sequences) == len(entries) > 3000
    _check_arithmetic(summary)
    assert set(summary.totals) == {"DEPOSIT", "WITHDRAWAL", "PAYMENT", "TRANSFER_OUT", "TRANSFER_IN", "REFUND"}
    assert document["currency"] == "USD"
    assert document["holder"] == {"name": user.name, "email": user.email}
    assert document["balance_id"] == str(busy_balance.pk)
    assert document["opening_balance"] == "0.00"
    assert document["closing_balance"] == f"{Transaction.objects.get(pk=entries[-1].pk).balance_after:.2f}"
    # Each entry as the history API writes it.
    transfer = next(entry for entry in document["entries"] if entry["type"] == "TRANSFER_OUT")
    assert transfer == api.get(f"/api/v1/transactions/{transfer['id']}/").json()


def test_a_statement_of_part_of_the_ledger_opens_and_closes_where_the_chain_says(api, busy_balance):
    entries = _entries(busy_balance)
    start = entries[700].created_at  # inclusive
    end = entries[2100].created_at  # exclusive

    document, summary = json_summary(body_of(api.get(statement_url(busy_balance), period(start, end))))

    expected = expected_summary(busy_balance, start, end)
    assert summary == expected
    assert summary.sequences[0] == entries[700].sequence
    assert summary.sequences[-1] < entries[2100].sequence
    assert summary.opening == entries[699].balance_after
    _check_arithmetic(summary)
    assert document["from"] == start.isoformat().replace("+00:00", "Z")
    assert document["to"] == end.isoformat().replace("+00:00", "Z")


def test_a_csv_statement_parses_as_one_table_and_adds_up(api, busy_balance):
    entries = _entries(busy_balance)
    start, end = entries[10].created_at, entries[-5].created_at

    response = api.get(statement_url(busy_balance), period(start, end, "csv"))

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(f'attachment; filename="statement-{busy_balance.pk}-')
    assert response["Content-Disposition"].endswith('.csv"')
    rows, summary = csv_summary(body_of(response))
    assert summary == expected_summary(busy_balance, start, end)
    _check_arithmetic(summary)
    assert [row["record"] for row in rows[:2]] == ["opening", "entry"]
    assert rows[-1]["record"] == "closing"
    assert {row["currency"] for row in rows} == {"USD"}
    by_id = {row["entry_id"]: row for row in rows if row["record"] == "entry"}
    for entry in entries[10:-5]:
        row = by_id[str(entry.pk)]
        assert row["balance"] == f"{entry.balance_after:.2f}"
        assert (row["debit"] or row["credit"]) == f"{entry.amount:.2f}"


def test_a_csv_statement_keeps_text_whole_and_formulas_inert(api, busy_balance):
    entries = _entries(busy_balance)
    start, end = a_second_around(entries)

    rows, _ = csv_summary(body_of(api.get(statement_url(busy_balance), period(start, end, "csv"))))

    by_type: dict[str, dict[str, str]] = {}
    for row in rows:
        if row["record"] == "entry":
            by_type.setdefault(row["type"], row)  # the first of each type: book_other_types booked them first
    assert by_type["TRANSFER_OUT"]["description"] == "'=cmd|' /C calc'!A0"
    assert by_type["TRANSFER_OUT"]["exchange_rate"] == "0.91"
    assert by_type["PAYMENT"]["merchant"] == "Café Zürich 東京"
    assert by_type["PAYMENT"]["description"] == "Line one\nline two"


def test_amounts_are_written_with_the_currencys_minor_unit(user, api):
    yen = funded_balance(currency="JPY", amount="5000", wallet=WalletFactory(owner=user))
    dinar = funded_balance(currency="KWD", amount="1.250", wallet=WalletFactory(owner=user))
    book_many(dinar, 30)
    later = timezone.now() + timedelta(seconds=1)
    start = later - timedelta(days=1)

    yen_json, _ = json_summary(body_of(api.get(statement_url(yen), period(start, later))))
    dinar_rows, dinar_summary = csv_summary(body_of(api.get(statement_url(dinar), period(start, later, "csv"))))

    assert yen_json["closing_balance"] == "5000"
    assert yen_json["entries"][0]["amount"] == "5000"
    assert [total["amount"] for total in yen_json["totals"]] == ["5000"]
    assert all(len(row["balance"].split(".")[1]) == 3 for row in dinar_rows if row["balance"])
    _check_arithmetic(dinar_summary)


def test_a_period_without_entries_opens_and_closes_at_the_same_amount(user, api):
    balance = funded_balance(amount="42.00", wallet=WalletFactory(owner=user))
    after = timezone.now() + timedelta(microseconds=1)
    start, end = after, after + timedelta(days=30)  # ends now: nothing booked since

    document, summary = json_summary(body_of(api.get(statement_url(balance), period(start, end))))
    rows, csv_totals = csv_summary(body_of(api.get(statement_url(balance), period(start, end, "csv"))))

    assert (summary.opening, summary.closing, summary.sequences) == (Decimal("42.00"), Decimal("42.00"), [])
    assert document["entries"] == [] and document["totals"] == []
    assert (document["total_credits"], document["total_debits"]) == ("0.00", "0.00")
    assert [row["record"] for row in rows] == ["opening", "closing"]
    assert csv_totals.closing == Decimal("42.00")


def test_a_period_before_the_balance_existed_opens_at_zero(user, api):
    balance = funded_balance(amount="42.00", wallet=WalletFactory(owner=user))
    end = timezone.now() + timedelta(seconds=1)

    _, summary = json_summary(body_of(api.get(statement_url(balance), period(end - timedelta(days=366), end))))

    assert (summary.opening, summary.closing, summary.credits) == (Decimal(0), Decimal("42.00"), Decimal("42.00"))


def test_a_period_that_ends_in_the_future_ends_now(user, api):
    balance = funded_balance(amount="42.00", wallet=WalletFactory(owner=user))
    asked_at = timezone.now()

    document, summary = json_summary(
        body_of(api.get(statement_url(balance), period(asked_at - timedelta(days=1), asked_at + timedelta(days=9))))
    )

    assert asked_at <= datetime.fromisoformat(document["to"]) <= datetime.fromisoformat(document["generated_at"])
    assert summary.closing == Decimal("42.00")


# --- input: 400 before 404 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "details"),
    [
        ({"to": "2026-01-02T00:00:00Z"}, {"from": ["This field is required."]}),
        ({"from": "2026-01-01T00:00:00Z"}, {"to": ["This field is required."]}),
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            {"to": ["The period must end after it starts."]},
        ),
        (
            {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            {"to": ["The period must end after it starts."]},
        ),
        (
            {"from": "2025-01-01T00:00:00Z", "to": "2026-01-02T00:00:00.000001Z"},
            {"to": ["A statement covers at most 366 days."]},
        ),
        (
            {"from": "2999-01-01T00:00:00Z", "to": "2999-01-02T00:00:00Z"},
            {"from": ["The period starts in the future."]},
        ),
        (
            {"from": "2026-01-01", "to": "2026-01-02T00:00:00Z"},
            {"from": ["Use an ISO 8601 date and time with its zone, e.g. 2026-11-25T10:05:00Z."]},
        ),
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "format": "xlsx"},
            {"format": ['"xlsx" is not a valid choice.']},
        ),
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "format": ""},
            {"format": ['"" is not a valid choice.']},
        ),
    ],
)
def test_a_malformed_period_or_format_is_400_whatever_the_balance(api, other_user, query, details):
    someone_elses = funded_balance(amount="1.00", wallet=WalletFactory(owner=other_user))

    response = api.get(statement_url(someone_elses), query)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"] == "application/json"
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"] == details


def test_a_period_of_exactly_366_days_is_accepted(user, api):
    balance = funded_balance(amount="1.00", wallet=WalletFactory(owner=user))
    end = timezone.now()

    response = api.get(statement_url(balance), period(end - timedelta(days=366), end))

    assert response.status_code == HTTPStatus.OK
    assert json_summary(body_of(response))[1].closing == Decimal("1.00")


# --- whose balance -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "csv", "pdf"])
def test_another_users_balance_is_404_in_every_format(api, other_user, fmt):
    someone_elses = funded_balance(amount="1.00", wallet=WalletFactory(owner=other_user))
    end = timezone.now()

    response = api.get(statement_url(someone_elses), period(end - timedelta(days=1), end, fmt))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["Content-Type"] == "application/json"
    assert error_code(response) == "not_found"


def test_an_unknown_balance_is_404_and_no_credentials_401(api, anon_client):
    unknown = BalanceFactory.build()
    end = timezone.now()
    query = period(end - timedelta(days=1), end, "csv")

    assert api.get(statement_url(unknown), query).status_code == HTTPStatus.NOT_FOUND
    anonymous = anon_client.get(statement_url(unknown), query)
    assert anonymous.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(anonymous) == "not_authenticated"


def test_the_statement_is_in_the_openapi_document_with_its_real_constraints(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    operation = schema["paths"]["/api/v1/balances/{id}/statement/"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert parameters["id"]["schema"] == {"type": "string", "format": "uuid"}
    for name in ("from", "to"):
        assert parameters[name]["required"] is True
        assert parameters[name]["schema"]["format"] == "date-time"
        assert parameters[name]["schema"]["pattern"].startswith("^")
    assert parameters["format"]["schema"]["enum"] == ["json", "csv", "pdf"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv", "application/pdf"}
    as_of = next(p for p in schema["paths"]["/api/v1/balances/{id}/"]["get"]["parameters"] if p["name"] == "as_of")
    assert as_of["schema"]["format"] == "date-time"
    assert not as_of.get("required", False)
