"""The money movements of API.md: deposit, withdraw, payment, transfer, refund; their rules and error codes."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.utils import timezone

from conftest import error_code
from tests.factories import WalletFactory, funded_balance
from transactions.models import Transaction, TransactionSource, TransactionType
from wallets.models import ExchangeRate, WalletBalance
from wallets.services import exchange_rate_create, wallet_set_frozen

DEPOSIT = "/api/v1/transactions/deposit/"
WITHDRAW = "/api/v1/transactions/withdraw/"
PAYMENT = "/api/v1/transactions/payment/"
TRANSFER = "/api/v1/transactions/transfer/"

ENTRY_FIELDS = {
    "id",
    "wallet_balance_id",
    "wallet_id",
    "currency",
    "type",
    "amount",
    "balance_after",
    "sequence",
    "related_wallet_balance_id",
    "exchange_rate",
    "reference",
    "source",
    "description",
    "merchant",
    "created_at",
}


def refund_url(entry_id) -> str:
    return f"/api/v1/transactions/{entry_id}/refund/"


def balance_of(user, *, currency: str = "USD", amount: str = "100.00") -> WalletBalance:
    """A balance of `user`, in a wallet of its own, funded by a SEED deposit."""
    return funded_balance(wallet=WalletFactory(owner=user), currency=currency, amount=amount)


def post_json(client, url: str, text: str, **headers):
    """Post a JSON body exactly as written, so that JSON numbers reach the parser unrounded."""
    return client.post(url, data=text, content_type="application/json", **headers)


def ledger_state() -> tuple:
    """Everything a refused movement must leave unchanged: every balance and the ledger's size."""
    balances = tuple(WalletBalance.objects.order_by("pk").values_list("pk", "amount", "last_sequence"))
    return balances, Transaction.objects.count()


def amount_of(balance: WalletBalance) -> Decimal:
    balance.refresh_from_db()
    return balance.amount


# --- deposit ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_deposit_answers_201_with_the_deposit_entry(api, user):
    balance = balance_of(user, amount="10.00")

    response = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "5.5", "description": "Salary"})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert set(body) == ENTRY_FIELDS
    assert body["wallet_balance_id"] == str(balance.pk)
    assert body["wallet_id"] == str(balance.wallet_id)
    assert body["currency"] == "USD"
    assert body["type"] == "DEPOSIT"
    assert body["amount"] == "5.50"
    assert body["balance_after"] == "15.50"
    assert body["sequence"] == 2
    assert body["related_wallet_balance_id"] is None
    assert body["exchange_rate"] is None
    assert uuid.UUID(body["reference"])
    assert body["source"] == "API"
    assert body["description"] == "Salary"
    assert body["merchant"] == ""
    assert body["created_at"].endswith("Z")
    assert amount_of(balance) == Decimal("15.50")
    entry = Transaction.objects.get(pk=body["id"])
    assert entry.created_by == user
    assert entry.owner == user


@pytest.mark.django_db
def test_deposit_into_another_users_balance_answers_404_and_moves_nothing(api, other_user):
    balance = balance_of(other_user)
    before = ledger_state()

    response = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "5.00"})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"
    assert ledger_state() == before


@pytest.mark.django_db
def test_deposit_into_an_unknown_balance_answers_404(api):
    response = api.post(DEPOSIT, {"wallet_balance_id": str(uuid.uuid4()), "amount": "5.00"})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "5.00"}, "wallet_balance_id"),
        ({"wallet_balance_id": "not-a-uuid", "amount": "5.00"}, "wallet_balance_id"),
        ({"wallet_balance_id": "BALANCE"}, "amount"),
        ({"wallet_balance_id": "BALANCE", "amount": "5.00", "description": "x" * 256}, "description"),
    ],
)
def test_deposit_refuses_missing_or_invalid_fields_with_400(api, user, body, field):
    balance = balance_of(user)
    body = {key: str(balance.pk) if value == "BALANCE" else value for key, value in body.items()}
    before = ledger_state()

    response = api.post(DEPOSIT, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert field in response.json()["error"]["details"]
    assert ledger_state() == before


@pytest.mark.django_db
def test_movements_need_authentication(anon_client, other_user):
    balance = balance_of(other_user)
    before = ledger_state()

    response = anon_client.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "5.00"})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "not_authenticated"
    assert ledger_state() == before


# --- amount validation -----------------------------------------------------------------------


INVALID_AMOUNTS = [
    pytest.param('"-1.00"', id="negative"),
    pytest.param("-1", id="negative-number"),
    pytest.param('"0"', id="zero"),
    pytest.param('"0.00"', id="zero-with-decimals"),
    pytest.param("0", id="zero-number"),
    pytest.param('"1.001"', id="three-decimals-in-usd"),
    pytest.param("1.001", id="three-decimals-in-usd-number"),
    pytest.param('"abc"', id="not-a-number"),
    pytest.param('""', id="empty-string"),
    pytest.param('"1,00"', id="comma"),
    pytest.param('"NaN"', id="nan-string"),
    pytest.param('"Infinity"', id="infinity-string"),
    pytest.param('"-Infinity"', id="minus-infinity-string"),
    pytest.param("true", id="boolean-true"),
    pytest.param("false", id="boolean-false"),
    pytest.param("null", id="null"),
    pytest.param("[10]", id="list"),
    pytest.param('{"value": 10}', id="object"),
    pytest.param('"1000000000000000.01"', id="just-above-ten-to-the-fifteen"),
    pytest.param("1000000000000001", id="above-ten-to-the-fifteen-number"),
    pytest.param('"1e16"', id="exponent-above-ten-to-the-fifteen"),
    pytest.param("1e400", id="number-too-large-for-a-float"),
    pytest.param('"1e-999999999"', id="tiny-exponent-string"),
    pytest.param('"1E1"', id="exponent-in-a-string"),
    pytest.param('"-0"', id="minus-zero-string"),
    pytest.param("1e-999999999", id="tiny-exponent-number"),
    pytest.param('"1.0000000000000000000000000000001"', id="decimals-beyond-28-digits"),
    pytest.param('"0.00001"', id="more-decimals-than-any-currency"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("amount", INVALID_AMOUNTS)
def test_deposit_refuses_an_invalid_amount_with_400_in_details_amount(api, user, amount):
    balance = balance_of(user)
    before = ledger_state()

    response = post_json(api, DEPOSIT, f'{{"wallet_balance_id": "{balance.pk}", "amount": {amount}}}')

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"]["amount"]
    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("url", [WITHDRAW, PAYMENT, TRANSFER])
@pytest.mark.parametrize("amount", ['"-5"', '"0"', '"1.001"', '"NaN"', "true", '"1000000000000001"'])
def test_every_movement_refuses_an_invalid_amount_with_400_in_details_amount(api, user, url, amount):
    balance = balance_of(user)
    destination = balance_of(user)
    body = {"wallet_balance_id": str(balance.pk), "merchant": "Shop"}
    if url == TRANSFER:
        body = {"from_wallet_balance_id": str(balance.pk), "to_wallet_balance_id": str(destination.pk)}
    before = ledger_state()

    response = post_json(api, url, json.dumps(body)[:-1] + f', "amount": {amount}}}')

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert error_code(response) == "validation_error"
    assert "amount" in response.json()["error"]["details"]
    assert ledger_state() == before


NOT_ASCII_AMOUNTS = [
    pytest.param("١٠", id="arabic-indic-digits"),
    pytest.param("۱۰", id="extended-arabic-indic-digits"),
    pytest.param("１０", id="full-width-digits"),
    pytest.param("१०", id="devanagari-digits"),
    pytest.param("𝟏𝟎", id="mathematical-bold-digits"),
    pytest.param("1٠", id="ascii-then-arabic-indic"),
    pytest.param("٣.٥٠", id="arabic-indic-with-a-point"),
    pytest.param("1.٥", id="arabic-indic-decimals"),
    pytest.param("1e٢", id="arabic-indic-exponent"),
    pytest.param("1٫50", id="arabic-decimal-separator"),
    pytest.param("１０．５", id="full-width-point"),
    pytest.param("\u00a010", id="leading-no-break-space"),
    pytest.param("10\u00a0", id="trailing-no-break-space"),
    pytest.param("\u200710", id="figure-space"),
    pytest.param("10\u202f", id="narrow-no-break-space"),
    pytest.param("\u300010", id="ideographic-space"),
    pytest.param("10\u0085", id="next-line"),
    pytest.param("10\u2028", id="line-separator"),
    pytest.param("\u200b10", id="zero-width-space"),
    pytest.param("10\ufeff", id="byte-order-mark"),
    pytest.param("1 0", id="space-inside"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", [DEPOSIT, WITHDRAW, PAYMENT, TRANSFER])
@pytest.mark.parametrize("amount", NOT_ASCII_AMOUNTS)
def test_every_movement_refuses_an_amount_that_is_not_ascii_with_400(api, user, url, amount):
    balance = balance_of(user)
    destination = balance_of(user)
    body = {"wallet_balance_id": str(balance.pk), "merchant": "Shop", "amount": amount}
    if url == TRANSFER:
        body = {
            "from_wallet_balance_id": str(balance.pk),
            "to_wallet_balance_id": str(destination.pk),
            "amount": amount,
        }
    before = ledger_state()

    response = post_json(api, url, json.dumps(body))

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"]["amount"] == ["A valid number is required."]
    assert ledger_state() == before
    assert amount_of(balance) == Decimal("100.00")


@pytest.mark.django_db
@pytest.mark.parametrize("padding", [" ", "\t", "\n", "\r", " \t\r\n "])
def test_deposit_reads_an_amount_padded_with_json_whitespace(api, user, padding):
    balance = balance_of(user, amount="0")

    response = post_json(
        api, DEPOSIT, json.dumps({"wallet_balance_id": str(balance.pk), "amount": f"{padding}7.25{padding}"})
    )

    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert amount_of(balance) == Decimal("7.25")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("currency", "amount"),
    [("JPY", '"1.5"'), ("JPY", "0.5"), ("KWD", '"1.0005"'), ("USD", '"0.001"'), ("IDR", '"1.001"')],
)
def test_deposit_refuses_more_decimals_than_the_currency_allows(api, user, currency, amount):
    balance = balance_of(user, currency=currency, amount="0")
    before = ledger_state()

    response = post_json(api, DEPOSIT, f'{{"wallet_balance_id": "{balance.pk}", "amount": {amount}}}')

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"]["amount"]
    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("currency", "amount", "written"),
    [
        ("USD", '"10"', "10.00"),
        ("USD", "10", "10.00"),
        ("USD", '"10.00"', "10.00"),
        ("USD", "10.00", "10.00"),
        ("USD", "0.1", "0.10"),
        ("USD", '" 7.25 "', "7.25"),
        ("USD", "1E1", "10.00"),
        ("USD", '"+10."', "10.00"),
        ("USD", '".5"', "0.50"),
        ("JPY", '"1000"', "1000"),
        ("JPY", '"1000.00"', "1000"),
        ("JPY", "1000.0", "1000"),
        ("KWD", '"1.005"', "1.005"),
        ("KWD", "1.25", "1.250"),
        ("USD", '"1000000000000000"', "1000000000000000.00"),
        ("USD", "1000000000000000", "1000000000000000.00"),
        ("USD", "999999999999999.99", "999999999999999.99"),
    ],
)
def test_deposit_accepts_amounts_as_strings_or_json_numbers(api, user, currency, amount, written):
    balance = balance_of(user, currency=currency, amount="0")

    response = post_json(api, DEPOSIT, f'{{"wallet_balance_id": "{balance.pk}", "amount": {amount}}}')

    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert response.json()["amount"] == written
    assert response.json()["balance_after"] == written
    assert amount_of(balance) == Decimal(written)


@pytest.mark.django_db
def test_a_json_number_is_read_exactly_not_as_a_float(api, user):
    balance = balance_of(user, amount="0")

    # As a float 0.29 * 100 is 28.999999999999996; read as a Decimal it is exact.
    response = post_json(api, DEPOSIT, f'{{"wallet_balance_id": "{balance.pk}", "amount": 0.29}}')

    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["amount"] == "0.29"
    assert amount_of(balance) == Decimal("0.29")


@pytest.mark.django_db
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_deposit_refuses_a_bare_nan_or_infinity_json_literal_with_400(api, user, literal):
    balance = balance_of(user)
    before = ledger_state()

    response = post_json(api, DEPOSIT, f'{{"wallet_balance_id": "{balance.pk}", "amount": {literal}}}')

    # Not valid JSON at all, so the body is refused as malformed rather than field by field.
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert ledger_state() == before


# --- withdraw --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_withdraw_debits_the_balance_with_a_withdrawal_entry(api, user):
    balance = balance_of(user, amount="100.00")

    response = api.post(WITHDRAW, {"wallet_balance_id": str(balance.pk), "amount": "40"})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["type"] == "WITHDRAWAL"
    assert body["amount"] == "40.00"
    assert body["balance_after"] == "60.00"
    assert body["sequence"] == 2
    assert amount_of(balance) == Decimal("60.00")


@pytest.mark.django_db
def test_withdraw_may_empty_the_balance_exactly(api, user):
    balance = balance_of(user, amount="12.34")

    response = api.post(WITHDRAW, {"wallet_balance_id": str(balance.pk), "amount": "12.34"})

    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["balance_after"] == "0.00"
    assert amount_of(balance) == 0


@pytest.mark.django_db
def test_withdraw_above_the_balance_answers_422_insufficient_funds_and_leaves_no_trace(api, user):
    balance = balance_of(user, amount="10.00")
    before = ledger_state()

    response = api.post(WITHDRAW, {"wallet_balance_id": str(balance.pk), "amount": "10.01"})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "insufficient_funds"
    details = response.json()["error"]["details"]
    assert details["available"] == "10.00"
    assert details["requested"] == "10.01"
    assert ledger_state() == before


@pytest.mark.django_db
def test_withdraw_from_another_users_balance_answers_404(api, other_user):
    balance = balance_of(other_user)
    before = ledger_state()

    response = api.post(WITHDRAW, {"wallet_balance_id": str(balance.pk), "amount": "1.00"})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"
    assert ledger_state() == before


@pytest.mark.django_db
def test_withdraw_from_another_users_balance_answers_404_even_above_its_funds(api, other_user):
    balance = balance_of(other_user, amount="1.00")

    response = api.post(WITHDRAW, {"wallet_balance_id": str(balance.pk), "amount": "500.00"})

    # 404 before 422: the rule would confirm that the balance exists.
    assert response.status_code == HTTPStatus.NOT_FOUND


# --- payment ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_payment_debits_the_balance_and_records_the_merchant(api, user):
    balance = balance_of(user, amount="20.00")

    response = api.post(
        PAYMENT,
        {"wallet_balance_id": str(balance.pk), "amount": "12.99", "merchant": "Coffee Corner", "description": "Beans"},
    )

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["type"] == "PAYMENT"
    assert body["amount"] == "12.99"
    assert body["balance_after"] == "7.01"
    assert body["merchant"] == "Coffee Corner"
    assert body["description"] == "Beans"
    assert amount_of(balance) == Decimal("7.01")


@pytest.mark.django_db
@pytest.mark.parametrize("merchant", [None, ""])
def test_payment_needs_a_merchant(api, user, merchant):
    balance = balance_of(user)
    body = {"wallet_balance_id": str(balance.pk), "amount": "1.00"}
    if merchant is not None:
        body["merchant"] = merchant
    before = ledger_state()

    response = api.post(PAYMENT, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "merchant" in response.json()["error"]["details"]
    assert ledger_state() == before


@pytest.mark.django_db
def test_payment_above_the_balance_answers_422_insufficient_funds(api, user):
    balance = balance_of(user, amount="5.00")
    before = ledger_state()

    response = api.post(PAYMENT, {"wallet_balance_id": str(balance.pk), "amount": "5.01", "merchant": "Shop"})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "insufficient_funds"
    assert ledger_state() == before


@pytest.mark.django_db
def test_payment_from_another_users_balance_answers_404(api, other_user):
    balance = balance_of(other_user)
    before = ledger_state()

    response = api.post(PAYMENT, {"wallet_balance_id": str(balance.pk), "amount": "1.00", "merchant": "Shop"})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert ledger_state() == before


# --- transfer, one currency ------------------------------------------------------------------


@pytest.mark.django_db
def test_transfer_between_own_balances_writes_two_legs_with_one_reference(api, user):
    source = balance_of(user, amount="100.00")
    destination = balance_of(user, amount="5.00")

    response = api.post(
        TRANSFER,
        {
            "from_wallet_balance_id": str(source.pk),
            "to_wallet_balance_id": str(destination.pk),
            "amount": "25.00",
            "description": "Savings",
        },
    )

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["type"] == "TRANSFER_OUT"
    assert body["wallet_balance_id"] == str(source.pk)
    assert body["related_wallet_balance_id"] == str(destination.pk)
    assert body["amount"] == "25.00"
    assert body["balance_after"] == "75.00"
    assert body["exchange_rate"] is None
    incoming = Transaction.objects.get(wallet_balance=destination, type=TransactionType.TRANSFER_IN)
    assert str(incoming.reference) == body["reference"]
    assert incoming.related_wallet_balance_id == source.pk
    assert incoming.amount == Decimal("25.00")
    assert incoming.balance_after == Decimal("30.00")
    assert incoming.exchange_rate is None
    assert incoming.description == "Savings"
    assert amount_of(source) == Decimal("75.00")
    assert amount_of(destination) == Decimal("30.00")
    assert Transaction.objects.filter(reference=body["reference"]).count() == 2


@pytest.mark.django_db
def test_transfer_to_another_users_balance_is_allowed(api, user, other_user):
    source = balance_of(user, amount="50.00")
    destination = balance_of(other_user, amount="0")

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "20.00"},
    )

    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert amount_of(source) == Decimal("30.00")
    assert amount_of(destination) == Decimal("20.00")
    incoming = Transaction.objects.get(wallet_balance=destination)
    assert incoming.owner == other_user
    assert incoming.type == TransactionType.TRANSFER_IN


@pytest.mark.django_db
def test_transfer_answers_the_senders_leg_never_the_recipients_balance_after(api, user, other_user):
    source = balance_of(user, amount="50.00")
    destination = balance_of(other_user, amount="1000.00")

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "20.00"},
    )

    assert response.json()["balance_after"] == "30.00"
    assert "1020.00" not in response.content.decode()


@pytest.mark.django_db
def test_transfer_from_another_users_balance_answers_404(api, user, other_user):
    source = balance_of(other_user, amount="50.00")
    destination = balance_of(user, amount="0")
    before = ledger_state()

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "20.00"},
    )

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"
    assert ledger_state() == before


@pytest.mark.django_db
def test_transfer_from_another_users_balance_to_itself_answers_404_not_same_balance(api, other_user):
    balance = balance_of(other_user, amount="50.00")
    before = ledger_state()

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(balance.pk), "to_wallet_balance_id": str(balance.pk), "amount": "20.00"},
    )

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"
    assert ledger_state() == before


@pytest.mark.django_db
def test_transfer_to_an_unknown_balance_answers_404(api, user):
    source = balance_of(user)
    before = ledger_state()

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(uuid.uuid4()), "amount": "1.00"},
    )

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"
    assert ledger_state() == before


@pytest.mark.django_db
def test_transfer_to_the_same_balance_answers_422_same_balance(api, user):
    balance = balance_of(user)
    before = ledger_state()

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(balance.pk), "to_wallet_balance_id": str(balance.pk), "amount": "1.00"},
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "same_balance"
    assert ledger_state() == before


@pytest.mark.django_db
def test_transfer_above_the_balance_answers_422_insufficient_funds_and_credits_nothing(api, user, other_user):
    source = balance_of(user, amount="10.00")
    destination = balance_of(other_user, amount="1.00")
    before = ledger_state()

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "10.01"},
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "insufficient_funds"
    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["from_wallet_balance_id", "to_wallet_balance_id"])
def test_transfer_names_a_missing_balance_id_with_400(api, user, missing):
    body = {"from_wallet_balance_id": str(uuid.uuid4()), "to_wallet_balance_id": str(uuid.uuid4()), "amount": "1"}
    del body[missing]

    response = api.post(TRANSFER, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert missing in response.json()["error"]["details"]


@pytest.mark.django_db
def test_transfer_checks_the_input_before_the_balances(api, other_user):
    source = balance_of(other_user)

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(uuid.uuid4()), "amount": "-1"},
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "amount" in response.json()["error"]["details"]


# --- transfer, two currencies ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source_currency", "destination_currency", "rate", "amount", "credit"),
    [
        ("USD", "JPY", "158.45", "10.01", "1586"),  # 1586.0845 → 1586
        ("USD", "KWD", "0.3075", "1.99", "0.611"),  # 0.611925 → 0.611
        ("USD", "EUR", "0.91", "0.99", "0.90"),  # 0.9009 → 0.90
        ("JPY", "USD", "0.006311", "1000", "6.31"),  # 6.311 → 6.31
        ("KWD", "JPY", "515.123", "0.003", "1"),  # 1.545369 → 1
    ],
)
def test_cross_currency_transfer_credits_amount_times_rate_rounded_down(
    api, user, source_currency, destination_currency, rate, amount, credit
):
    exchange_rate_create(base=source_currency, quote=destination_currency, rate=Decimal(rate), created_by=None)
    source = balance_of(user, currency=source_currency, amount="10000")
    destination = balance_of(user, currency=destination_currency, amount="0")

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": amount},
    )

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["currency"] == source_currency
    assert Decimal(body["amount"]) == Decimal(amount)
    assert body["exchange_rate"] == rate
    incoming = Transaction.objects.get(wallet_balance=destination)
    assert incoming.amount == Decimal(credit)
    assert incoming.exchange_rate == Decimal(rate)
    assert str(incoming.reference) == body["reference"]
    assert amount_of(destination) == Decimal(credit)
    assert amount_of(source) == Decimal("10000") - Decimal(amount)


@pytest.mark.django_db
def test_cross_currency_transfer_that_rounds_to_zero_answers_422_amount_too_small(api, user):
    exchange_rate_create(base="USD", quote="JPY", rate=Decimal("50"), created_by=None)
    source = balance_of(user, currency="USD", amount="10.00")
    destination = balance_of(user, currency="JPY", amount="0")
    before = ledger_state()

    # 0.01 × 50 = 0.5 yen, which rounds down to nothing.
    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "0.01"},
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "amount_too_small"
    assert ledger_state() == before


@pytest.mark.django_db
def test_cross_currency_transfer_without_a_current_rate_answers_422_rate_unavailable(api, user):
    ExchangeRate.objects.filter(base_id="USD", quote_id="GBP", valid_to__isnull=True).update(valid_to=timezone.now())
    source = balance_of(user, currency="USD", amount="10.00")
    destination = balance_of(user, currency="GBP", amount="0")
    before = ledger_state()

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "1.00"},
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "rate_unavailable"
    assert ledger_state() == before


@pytest.mark.django_db
def test_cross_currency_transfer_does_not_invert_the_opposite_rate(api, user):
    # Only GBP→USD exists: a USD→GBP transfer must not use its inverse.
    ExchangeRate.objects.filter(base_id="USD", quote_id="GBP", valid_to__isnull=True).update(valid_to=timezone.now())
    assert ExchangeRate.objects.filter(base_id="GBP", quote_id="USD", valid_to__isnull=True).exists()
    source = balance_of(user, currency="USD", amount="10.00")
    destination = balance_of(user, currency="GBP", amount="0")

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "1.00"},
    )

    assert error_code(response) == "rate_unavailable"


@pytest.mark.django_db
def test_cross_currency_transfer_uses_the_newest_rate(api, user):
    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.5"), created_by=None)
    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.8"), created_by=None)
    source = balance_of(user, currency="USD", amount="10.00")
    destination = balance_of(user, currency="EUR", amount="0")

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "10.00"},
    )

    assert response.json()["exchange_rate"] == "0.8"
    assert amount_of(destination) == Decimal("8.00")


@pytest.mark.django_db
def test_cross_currency_transfer_checks_precision_in_the_source_currency(api, user):
    source = balance_of(user, currency="JPY", amount="1000")
    destination = balance_of(user, currency="USD", amount="0")
    before = ledger_state()

    response = api.post(
        TRANSFER,
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "1.5"},
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "amount" in response.json()["error"]["details"]
    assert ledger_state() == before


# --- refund ----------------------------------------------------------------------------------


def paid(api, balance, amount: str = "30.00") -> dict:
    response = api.post(PAYMENT, {"wallet_balance_id": str(balance.pk), "amount": amount, "merchant": "Shop"})
    assert response.status_code == HTTPStatus.CREATED, response.json()
    return response.json()


@pytest.mark.django_db
def test_staff_refund_defaults_to_the_whole_payment_on_the_payers_balance(api, user, finance_api, finance_user):
    balance = balance_of(user, amount="100.00")
    payment = paid(api, balance, "30.00")

    response = finance_api.post(refund_url(payment["id"]), {})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["type"] == "REFUND"
    assert body["wallet_balance_id"] == str(balance.pk)
    assert body["amount"] == "30.00"
    assert body["balance_after"] == "100.00"
    assert body["reference"] == payment["reference"]
    assert body["source"] == "API"
    assert body["merchant"] == "Shop"
    assert body["sequence"] == 3
    assert amount_of(balance) == Decimal("100.00")
    refund = Transaction.objects.get(pk=body["id"])
    assert refund.owner == user
    assert refund.created_by == finance_user


@pytest.mark.django_db
def test_partial_refunds_add_up_to_at_most_the_payment(api, user, finance_api):
    balance = balance_of(user, amount="100.00")
    payment = paid(api, balance, "30.00")

    first = finance_api.post(refund_url(payment["id"]), {"amount": "10.00"})
    second = finance_api.post(refund_url(payment["id"]), {"amount": "15"})
    too_much = finance_api.post(refund_url(payment["id"]), {"amount": "5.01"})
    rest = finance_api.post(refund_url(payment["id"]), {})

    assert first.status_code == HTTPStatus.CREATED
    assert second.status_code == HTTPStatus.CREATED
    assert too_much.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(too_much) == "refund_exceeds_payment"
    assert too_much.json()["error"]["details"]["refundable"] == "5.00"
    assert rest.status_code == HTTPStatus.CREATED
    assert rest.json()["amount"] == "5.00"
    assert amount_of(balance) == Decimal("100.00")


@pytest.mark.django_db
def test_refund_of_a_fully_refunded_payment_answers_422_refund_exceeds_payment(api, user, finance_api):
    balance = balance_of(user, amount="100.00")
    payment = paid(api, balance, "30.00")
    assert finance_api.post(refund_url(payment["id"]), {}).status_code == HTTPStatus.CREATED
    before = ledger_state()

    response = finance_api.post(refund_url(payment["id"]), {})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "refund_exceeds_payment"
    assert ledger_state() == before


@pytest.mark.django_db
def test_refund_of_anything_but_a_payment_answers_422_not_refundable(api, user, finance_api):
    balance = balance_of(user, amount="100.00")
    deposit = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "1.00"}).json()
    before = ledger_state()

    response = finance_api.post(refund_url(deposit["id"]), {})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "not_refundable"
    assert ledger_state() == before


@pytest.mark.django_db
def test_refund_of_an_unknown_transaction_answers_404_to_staff(finance_api):
    response = finance_api.post(refund_url(uuid.uuid4()), {})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["0", "-1", "1.001", "abc", "NaN"])
def test_refund_refuses_an_invalid_amount_with_400(api, user, finance_api, amount):
    payment = paid(api, balance_of(user, amount="100.00"))
    before = ledger_state()

    response = finance_api.post(refund_url(payment["id"]), {"amount": amount})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "amount" in response.json()["error"]["details"]
    assert ledger_state() == before


@pytest.mark.django_db
def test_refund_by_a_non_staff_caller_answers_403_for_their_own_payment(api, user):
    payment = paid(api, balance_of(user, amount="100.00"))
    before = ledger_state()

    response = api.post(refund_url(payment["id"]), {})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert error_code(response) == "permission_denied"
    assert ledger_state() == before


@pytest.mark.django_db
def test_refund_by_a_non_staff_caller_answers_403_whatever_the_id(api, other_api, other_user):
    others_payment = paid(other_api, balance_of(other_user, amount="100.00"))

    for entry_id in (others_payment["id"], str(uuid.uuid4())):
        response = api.post(refund_url(entry_id), {"amount": "-5"})

        assert response.status_code == HTTPStatus.FORBIDDEN
        assert error_code(response) == "permission_denied"


@pytest.mark.django_db
def test_refund_without_credentials_answers_401(anon_client, api, user):
    payment = paid(api, balance_of(user, amount="100.00"))

    response = anon_client.post(refund_url(payment["id"]), {})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "not_authenticated"


# --- frozen wallets --------------------------------------------------------------------------


@pytest.fixture
def frozen(user):
    """A funded USD balance of `user` in a wallet that is then frozen."""
    balance = balance_of(user, amount="100.00")
    wallet_set_frozen(wallet_id=balance.wallet_id, frozen=True)
    return balance


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "body"),
    [
        (DEPOSIT, {"wallet_balance_id": "FROZEN", "amount": "1.00"}),
        (WITHDRAW, {"wallet_balance_id": "FROZEN", "amount": "1.00"}),
        (PAYMENT, {"wallet_balance_id": "FROZEN", "amount": "1.00", "merchant": "Shop"}),
        (TRANSFER, {"from_wallet_balance_id": "FROZEN", "to_wallet_balance_id": "OPEN", "amount": "1.00"}),
        (TRANSFER, {"from_wallet_balance_id": "OPEN", "to_wallet_balance_id": "FROZEN", "amount": "1.00"}),
    ],
    ids=["deposit", "withdraw", "payment", "transfer-out", "transfer-in"],
)
def test_every_movement_into_or_out_of_a_frozen_wallet_answers_422_wallet_frozen(api, user, frozen, url, body):
    open_balance = balance_of(user, amount="100.00")
    ids = {"FROZEN": str(frozen.pk), "OPEN": str(open_balance.pk)}
    body = {key: ids.get(value, value) for key, value in body.items()}
    before = ledger_state()

    response = api.post(url, body)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "wallet_frozen"
    assert ledger_state() == before


@pytest.mark.django_db
def test_a_transfer_into_another_users_frozen_wallet_answers_422_wallet_frozen(other_api, other_user, frozen):
    source = balance_of(other_user, amount="10.00")
    before = ledger_state()

    response = other_api.post(
        TRANSFER, {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(frozen.pk), "amount": "1"}
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "wallet_frozen"
    assert ledger_state() == before


@pytest.mark.django_db
def test_a_refund_into_a_frozen_wallet_answers_422_wallet_frozen(api, user, finance_api):
    balance = balance_of(user, amount="100.00")
    payment = paid(api, balance)
    wallet_set_frozen(wallet_id=balance.wallet_id, frozen=True)
    before = ledger_state()

    response = finance_api.post(refund_url(payment["id"]), {})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "wallet_frozen"
    assert ledger_state() == before


@pytest.mark.django_db
def test_a_frozen_wallet_can_still_be_read(api, user, frozen):
    wallet = api.get(f"/api/v1/wallets/{frozen.wallet_id}/")
    balance = api.get(f"/api/v1/balances/{frozen.pk}/")
    history = api.get("/api/v1/transactions/", {"wallet_id": str(frozen.wallet_id)})
    total = api.get(f"/api/v1/wallets/{frozen.wallet_id}/total-balance/", {"currency": "USD"})

    assert wallet.status_code == HTTPStatus.OK
    assert wallet.json()["is_frozen"] is True
    assert balance.status_code == HTTPStatus.OK
    assert balance.json()["amount"] == "100.00"
    assert history.status_code == HTTPStatus.OK
    assert len(history.json()["results"]) == 1
    assert total.status_code == HTTPStatus.OK
    assert total.json()["total"] == "100.00"


@pytest.mark.django_db
def test_an_unfrozen_wallet_moves_money_again(api, user, frozen):
    wallet_set_frozen(wallet_id=frozen.wallet_id, frozen=False)

    response = api.post(WITHDRAW, {"wallet_balance_id": str(frozen.pk), "amount": "1.00"})

    assert response.status_code == HTTPStatus.CREATED
    assert amount_of(frozen) == Decimal("99.00")


@pytest.mark.django_db
def test_a_frozen_wallet_still_answers_404_to_strangers(other_api, frozen):
    response = other_api.post(WITHDRAW, {"wallet_balance_id": str(frozen.pk), "amount": "1.00"})

    assert response.status_code == HTTPStatus.NOT_FOUND


@pytest.mark.django_db
def test_seeded_entries_are_marked_seed_and_api_entries_api(api, user):
    balance = balance_of(user, amount="1.00")
    api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "1.00"})

    sources = list(Transaction.objects.filter(wallet_balance=balance).order_by("sequence").values_list("source"))

    assert sources == [(TransactionSource.SEED,), (TransactionSource.API,)]
