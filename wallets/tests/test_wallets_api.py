"""Wallets, balances, total-balance, currencies and rates (API.md, "Wallets and balances")."""

from __future__ import annotations

import uuid
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.utils import timezone

from conftest import error_code
from tests.factories import WalletFactory, funded_balance
from transactions.models import Transaction, TransactionSource, TransactionType
from wallets.models import ExchangeRate, Wallet, WalletBalance
from wallets.services import exchange_rate_create, wallet_set_frozen

WALLETS = "/api/v1/wallets/"


def wallet_url(wallet_id) -> str:
    return f"{WALLETS}{wallet_id}/"


def balances_url(wallet_id) -> str:
    return f"{WALLETS}{wallet_id}/balances/"


def total_url(wallet_id) -> str:
    return f"{WALLETS}{wallet_id}/total-balance/"


def balance_url(balance_id) -> str:
    return f"/api/v1/balances/{balance_id}/"


# --- wallets ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_wallet_answers_201_with_the_wallet(api, user):
    response = api.post(WALLETS, {"name": "Travel"})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert set(body) == {"id", "name", "is_frozen", "created_at", "balances"}
    assert body["name"] == "Travel"
    assert body["is_frozen"] is False
    assert body["balances"] == []
    assert Wallet.objects.get(pk=body["id"]).owner == user


@pytest.mark.django_db
def test_create_wallet_keeps_the_name_as_sent(api, user):
    response = api.post(WALLETS, {"name": " Travel "})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert response.json()["name"] == " Travel "
    assert Wallet.objects.get(owner=user).name == " Travel "


@pytest.mark.django_db
def test_create_wallet_refuses_a_name_the_caller_already_uses_with_409(api, user):
    WalletFactory(owner=user, name="Travel")

    response = api.post(WALLETS, {"name": "Travel"})

    assert response.status_code == HTTPStatus.CONFLICT
    assert error_code(response) == "wallet_exists"
    assert Wallet.objects.filter(owner=user).count() == 1


@pytest.mark.django_db
def test_two_users_may_each_have_a_wallet_of_the_same_name(api, other_user):
    WalletFactory(owner=other_user, name="Travel")

    response = api.post(WALLETS, {"name": "Travel"})

    assert response.status_code == HTTPStatus.CREATED


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": 0},
        {"name": 1.5},
        {"name": True},
        {"name": ["x"]},
        {"name": "a\x00b"},
    ],
)
def test_create_wallet_refuses_a_missing_or_invalid_name_with_400(api, user, body):
    response = api.post(WALLETS, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "name" in response.json()["error"]["details"]
    assert not Wallet.objects.filter(owner=user).exists()


@pytest.mark.django_db
def test_list_wallets_answers_only_the_callers_wallets_paginated(api, user, other_user):
    mine = [WalletFactory(owner=user, name="A"), WalletFactory(owner=user, name="B")]
    WalletFactory(owner=other_user)

    response = api.get(WALLETS)

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert {"next", "previous", "results"} <= set(body)
    assert body["count"] == 2
    assert [wallet["id"] for wallet in body["results"]] == [str(wallet.pk) for wallet in mine]


@pytest.mark.django_db
def test_list_wallets_pages_with_next_and_previous(api, user):
    for index in range(3):
        WalletFactory(owner=user, name=f"W{index}")

    first = api.get(WALLETS, {"page_size": 2}).json()
    second = api.get(first["next"]).json()

    assert len(first["results"]) == 2
    assert first["previous"] is None
    assert len(second["results"]) == 1
    assert second["next"] is None
    assert second["previous"] is not None


NOT_ASCII_COUNTS = ["٢", "２", "1٠", " 2", "2 ", "+2", "2_0", "2.0", "-1", "abc"]


@pytest.mark.django_db
@pytest.mark.parametrize("param", ["page", "page_size"])
@pytest.mark.parametrize("value", NOT_ASCII_COUNTS)
def test_list_wallets_refuses_a_page_or_page_size_that_is_not_ascii_digits(api, user, param, value):
    for index in range(3):
        WalletFactory(owner=user, name=f"W{index}")

    response = api.get(WALLETS, {param: value})

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"][param]


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0", "201", "9" * 5000, ""])
def test_list_wallets_refuses_a_page_size_outside_1_to_200(api, user, value):
    WalletFactory(owner=user)

    response = api.get(WALLETS, {"page_size": value})

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert response.json()["error"]["details"] == {"page_size": ["A page size is a whole number from 1 to 200."]}


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0", "", "last"])
def test_list_wallets_refuses_a_page_that_is_not_a_whole_number_from_1(api, user, value):
    WalletFactory(owner=user)

    response = api.get(WALLETS, {"page": value})

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert response.json()["error"]["details"] == {"page": ["A page is a whole number from 1 up."]}


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["3", "9" * 5000])
def test_list_wallets_answers_an_empty_page_past_the_last_one_pointing_back_to_it(api, user, page):
    for index in range(3):
        WalletFactory(owner=user, name=f"W{index}")

    response = api.get(WALLETS, {"page": page, "page_size": 2})

    assert response.status_code == HTTPStatus.OK, response.json()
    body = response.json()
    assert body["results"] == [] and body["count"] == 3 and body["next"] is None
    last = api.get(body["previous"]).json()
    assert [wallet["name"] for wallet in last["results"]] == ["W2"]


@pytest.mark.django_db
def test_retrieve_wallet_answers_it_with_its_balances(api, user):
    wallet = WalletFactory(owner=user)
    usd = funded_balance(wallet=wallet, currency="USD", amount="12.50")
    jpy = funded_balance(wallet=wallet, currency="JPY", amount="1000")
    kwd = funded_balance(wallet=wallet, currency="KWD", amount="1.25")

    response = api.get(wallet_url(wallet.pk))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["id"] == str(wallet.pk)
    amounts = {balance["currency"]: balance["amount"] for balance in body["balances"]}
    assert amounts == {"USD": "12.50", "JPY": "1000", "KWD": "1.250"}
    ids = {balance["id"] for balance in body["balances"]}
    assert ids == {str(usd.pk), str(jpy.pk), str(kwd.pk)}
    assert all(balance["wallet_id"] == str(wallet.pk) for balance in body["balances"])


@pytest.mark.django_db
def test_another_users_wallet_answers_404(api, other_user):
    wallet = WalletFactory(owner=other_user)

    response = api.get(wallet_url(wallet.pk))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.mark.django_db
def test_an_unknown_wallet_answers_404(api):
    response = api.get(wallet_url(uuid.uuid4()))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.mark.django_db
def test_a_wallet_id_that_is_not_a_uuid_answers_404(api):
    response = api.get(wallet_url("not-a-uuid"))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.mark.django_db
def test_wallets_need_authentication(anon_client):
    response = anon_client.get(WALLETS)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "not_authenticated"


# --- balances --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_balance_opens_an_empty_balance_without_ledger_entries(api, user):
    wallet = WalletFactory(owner=user)

    response = api.post(balances_url(wallet.pk), {"currency": "USD"})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert set(body) == {"id", "wallet_id", "currency", "amount", "held", "available", "updated_at"}
    assert body["wallet_id"] == str(wallet.pk)
    assert body["currency"] == "USD"
    assert body["amount"] == body["held"] == body["available"] == "0.00"
    balance = WalletBalance.objects.get(pk=body["id"])
    assert balance.amount == 0
    assert balance.last_sequence == 0
    assert not Transaction.objects.filter(wallet_balance=balance).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("initial_amount", ["١٠", "１０", "1٠", "10\u00a0", "\u200710"])
def test_create_balance_refuses_an_initial_amount_that_is_not_ascii(api, user, initial_amount):
    wallet = WalletFactory(owner=user)

    response = api.post(balances_url(wallet.pk), {"currency": "USD", "initial_amount": initial_amount})

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"]["initial_amount"]
    assert not WalletBalance.objects.filter(wallet=wallet).exists()
    assert not Transaction.objects.filter(wallet=wallet).exists()


@pytest.mark.django_db
def test_create_balance_with_zero_initial_amount_writes_no_entry(api, user):
    wallet = WalletFactory(owner=user)

    response = api.post(balances_url(wallet.pk), {"currency": "EUR", "initial_amount": "0"})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert response.json()["amount"] == "0.00"
    assert not Transaction.objects.filter(wallet_balance_id=response.json()["id"]).exists()


@pytest.mark.django_db
def test_create_balance_books_the_initial_amount_as_a_deposit_entry(api, user):
    wallet = WalletFactory(owner=user)

    response = api.post(balances_url(wallet.pk), {"currency": "USD", "initial_amount": "25.5"})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert response.json()["amount"] == "25.50"
    balance = WalletBalance.objects.get(pk=response.json()["id"])
    assert balance.amount == Decimal("25.50")
    assert balance.last_sequence == 1
    (entry,) = Transaction.objects.filter(wallet_balance=balance)
    assert entry.type == TransactionType.DEPOSIT
    assert entry.amount == Decimal("25.50")
    assert entry.balance_after == Decimal("25.50")
    assert entry.sequence == 1
    assert entry.source == TransactionSource.API
    assert entry.owner == user
    assert entry.created_by == user


@pytest.mark.django_db
def test_the_opening_deposit_shows_in_the_callers_history(api, user):
    wallet = WalletFactory(owner=user)
    balance_id = api.post(balances_url(wallet.pk), {"currency": "JPY", "initial_amount": 1000}).json()["id"]

    history = api.get("/api/v1/transactions/", {"wallet_balance_id": balance_id}).json()["results"]

    assert [(entry["type"], entry["amount"], entry["sequence"]) for entry in history] == [("DEPOSIT", "1000", 1)]


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["kwd", "Kwd", " KWD", "KWD\n", 414])
def test_create_balance_refuses_a_currency_code_that_is_not_three_capitals(api, user, code):
    wallet = WalletFactory(owner=user)

    response = api.post(balances_url(wallet.pk), {"currency": code, "initial_amount": "1.25"})

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert response.json()["error"]["details"] == {
        "currency": ["An ISO 4217 currency code is three capital letters, e.g. USD."]
    }
    assert not wallet.balances.exists()


@pytest.mark.django_db
def test_create_balance_refuses_a_second_balance_in_one_currency_with_409(api, user):
    wallet = WalletFactory(owner=user)
    existing = funded_balance(wallet=wallet, currency="USD", amount="10.00")

    response = api.post(balances_url(wallet.pk), {"currency": "USD", "initial_amount": "5.00"})

    assert response.status_code == HTTPStatus.CONFLICT
    assert error_code(response) == "balance_exists"
    assert WalletBalance.objects.filter(wallet=wallet).count() == 1
    existing.refresh_from_db()
    assert existing.amount == Decimal("10.00")
    assert Transaction.objects.filter(wallet=wallet).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("currency", ["XXX", "US", "USDX", ""])
def test_create_balance_refuses_an_unknown_currency_with_400(api, user, currency):
    wallet = WalletFactory(owner=user)

    response = api.post(balances_url(wallet.pk), {"currency": currency})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "currency" in response.json()["error"]["details"]
    assert not WalletBalance.objects.filter(wallet=wallet).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("currency", "initial_amount"),
    [("USD", "1.001"), ("JPY", "1.5"), ("KWD", "0.0001"), ("USD", "-1"), ("USD", "abc"), ("USD", "NaN")],
)
def test_create_balance_refuses_an_invalid_initial_amount_in_details_initial_amount(
    api, user, currency, initial_amount
):
    wallet = WalletFactory(owner=user)

    response = api.post(balances_url(wallet.pk), {"currency": currency, "initial_amount": initial_amount})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "initial_amount" in response.json()["error"]["details"]
    assert not WalletBalance.objects.filter(wallet=wallet).exists()
    assert not Transaction.objects.filter(wallet=wallet).exists()


@pytest.mark.django_db
def test_create_balance_in_another_users_wallet_answers_404(api, other_user):
    wallet = WalletFactory(owner=other_user)

    response = api.post(balances_url(wallet.pk), {"currency": "USD", "initial_amount": "5.00"})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"
    assert not WalletBalance.objects.filter(wallet=wallet).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{"currency": "XXX"}, {"currency": "JPY", "initial_amount": "1.5"}, {"currency": "USD", "initial_amount": "-1"}],
)
def test_create_balance_checks_the_input_before_the_wallet(api, other_user, body):
    wallet = WalletFactory(owner=other_user)

    response = api.post(balances_url(wallet.pk), body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"


@pytest.mark.django_db
def test_create_balance_with_an_initial_amount_in_a_frozen_wallet_answers_422_and_opens_nothing(api, user):
    wallet = WalletFactory(owner=user)
    wallet_set_frozen(wallet_id=wallet.pk, frozen=True)

    response = api.post(balances_url(wallet.pk), {"currency": "USD", "initial_amount": "5.00"})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "wallet_frozen"
    assert not WalletBalance.objects.filter(wallet=wallet).exists()
    assert not Transaction.objects.filter(wallet=wallet).exists()


@pytest.mark.django_db
def test_retrieve_balance_answers_the_callers_balance(api, user):
    balance = funded_balance(wallet=WalletFactory(owner=user), currency="KWD", amount="1.5")

    response = api.get(balance_url(balance.pk))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["id"] == str(balance.pk)
    assert body["wallet_id"] == str(balance.wallet_id)
    assert body["currency"] == "KWD"
    assert body["amount"] == "1.500"
    assert body["updated_at"]


@pytest.mark.django_db
def test_another_users_balance_answers_404(api, other_user):
    balance = funded_balance(wallet=WalletFactory(owner=other_user))

    response = api.get(balance_url(balance.pk))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.mark.django_db
def test_an_unknown_balance_answers_404(api):
    response = api.get(balance_url(uuid.uuid4()))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


# --- total-balance ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_total_balance_converts_every_balance_at_the_current_rates(api, user):
    wallet = WalletFactory(owner=user)
    funded_balance(wallet=wallet, currency="USD", amount="100.00")
    funded_balance(wallet=wallet, currency="EUR", amount="50.00")
    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.91"), created_by=None)

    response = api.get(total_url(wallet.pk), {"currency": "EUR"})

    assert response.status_code == HTTPStatus.OK, response.json()
    assert response.json() == {
        "wallet_id": str(wallet.pk),
        "currency": "EUR",
        "total": "141.00",
        "rates": [{"from": "USD", "to": "EUR", "rate": "0.91"}],
    }


@pytest.mark.django_db
def test_total_balance_rounds_down_once_after_summing_exactly(api, user):
    wallet = WalletFactory(owner=user)
    funded_balance(wallet=wallet, currency="USD", amount="0.01")
    funded_balance(wallet=wallet, currency="EUR", amount="0.01")
    exchange_rate_create(base="USD", quote="JPY", rate=Decimal("158.45"), created_by=None)
    exchange_rate_create(base="EUR", quote="JPY", rate=Decimal("174.6"), created_by=None)

    response = api.get(total_url(wallet.pk), {"currency": "JPY"})

    # 1.5845 + 1.746 = 3.3305 → 3; rounding each balance first would give 1 + 1 = 2.
    assert response.status_code == HTTPStatus.OK, response.json()
    assert response.json()["total"] == "3"
    assert response.json()["rates"] == [
        {"from": "EUR", "to": "JPY", "rate": "174.6"},
        {"from": "USD", "to": "JPY", "rate": "158.45"},
    ]


@pytest.mark.django_db
def test_total_balance_of_an_empty_wallet_is_zero(api, user):
    wallet = WalletFactory(owner=user)

    response = api.get(total_url(wallet.pk), {"currency": "KWD"})

    assert response.status_code == HTTPStatus.OK
    assert response.json()["total"] == "0.000"
    assert response.json()["rates"] == []


@pytest.mark.django_db
def test_total_balance_without_a_current_rate_answers_422_rate_unavailable(api, user):
    wallet = WalletFactory(owner=user)
    funded_balance(wallet=wallet, currency="USD", amount="1.00")
    ExchangeRate.objects.filter(base_id="USD", quote_id="GBP", valid_to__isnull=True).update(valid_to=timezone.now())

    response = api.get(total_url(wallet.pk), {"currency": "GBP"})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "rate_unavailable"


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{}, {"currency": "XXX"}, {"currency": "EURO"}])
def test_total_balance_refuses_a_missing_or_unknown_currency_with_400(api, user, query):
    wallet = WalletFactory(owner=user)

    response = api.get(total_url(wallet.pk), query)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "currency" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_total_balance_of_another_users_wallet_answers_404(api, other_user):
    wallet = WalletFactory(owner=other_user)

    response = api.get(total_url(wallet.pk), {"currency": "EUR"})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


# --- currencies and rates --------------------------------------------------------------------


@pytest.mark.django_db
def test_currencies_is_a_plain_array_with_minor_units(api):
    response = api.get("/api/v1/currencies/")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert isinstance(body, list)
    minor_units = {currency["code"]: currency["minor_unit"] for currency in body}
    assert {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "IDR": 2, "KWD": 3}.items() <= minor_units.items()
    assert all(set(currency) == {"code", "name", "minor_unit"} for currency in body)


@pytest.mark.django_db
def test_currencies_need_authentication(anon_client):
    assert anon_client.get("/api/v1/currencies/").status_code == HTTPStatus.UNAUTHORIZED


@pytest.mark.django_db
def test_rates_is_a_plain_array_of_current_rates_of_one_base(api):
    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.9123456789"), created_by=None)

    response = api.get("/api/v1/rates/", {"base": "USD"})

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert isinstance(body, list)
    assert body
    assert all(rate["base"] == "USD" for rate in body)
    assert all(set(rate) == {"base", "quote", "rate", "valid_from"} for rate in body)
    eur = [rate for rate in body if rate["quote"] == "EUR"]
    assert len(eur) == 1
    assert eur[0]["rate"] == "0.9123456789"
    assert len({rate["quote"] for rate in body}) == len(body)


@pytest.mark.django_db
def test_rates_without_a_base_lists_every_current_pair_once(api):
    response = api.get("/api/v1/rates/")

    assert response.status_code == HTTPStatus.OK
    pairs = [(rate["base"], rate["quote"]) for rate in response.json()]
    assert len(pairs) == len(set(pairs))
    assert len(pairs) == ExchangeRate.objects.filter(valid_to__isnull=True).count()


@pytest.mark.django_db
def test_a_new_rate_closes_the_old_one_and_keeps_it_for_audit(api):
    old = ExchangeRate.objects.get(base_id="USD", quote_id="JPY", valid_to__isnull=True)

    new = exchange_rate_create(base="USD", quote="JPY", rate=Decimal("150"), created_by=None)

    old.refresh_from_db()
    assert old.valid_to is not None
    assert new.valid_to is None
    listed = [rate for rate in api.get("/api/v1/rates/", {"base": "USD"}).json() if rate["quote"] == "JPY"]
    assert [rate["rate"] for rate in listed] == ["150"]


@pytest.mark.django_db
def test_rates_refuses_an_unknown_base_with_400(api):
    response = api.get("/api/v1/rates/", {"base": "XXX"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "base" in response.json()["error"]["details"]
