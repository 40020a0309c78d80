"""Wallets, balances, currencies and rates in the admin: adjustments, freezing and rates go through the services."""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from tests.admin_support import round_trips
from tests.factories import BalanceFactory, WalletFactory, funded_balance
from transactions.models import Transaction, TransactionSource, TransactionType
from wallets.models import Currency, ExchangeRate, Wallet, WalletBalance
from wallets.services import exchange_rate_create

pytestmark = pytest.mark.django_db

WALLETS = reverse("admin:wallets_wallet_changelist")
BALANCES = reverse("admin:wallets_walletbalance_changelist")
RATES = reverse("admin:wallets_exchangerate_changelist")
ADD_RATE = reverse("admin:wallets_exchangerate_add")
CURRENCIES = reverse("admin:wallets_currency_changelist")
QUERY_BOUND = 20


def balance_url(balance: WalletBalance) -> str:
    return reverse("admin:wallets_walletbalance_change", args=[balance.pk])


def adjust_url(balance: WalletBalance) -> str:
    return reverse("admin:wallets_walletbalance_adjust", args=[balance.pk])


def wallet_url(wallet: Wallet) -> str:
    return reverse("admin:wallets_wallet_change", args=[wallet.pk])


def freeze(client, *wallets: Wallet, action: str = "freeze_wallets"):
    return client.post(WALLETS, {"action": action, "_selected_action": [str(wallet.pk) for wallet in wallets]})


# --- balance adjustments ----------------------------------------------------------------------


def test_finance_deposits_into_a_balance_through_the_ledger(finance, finance_user):
    balance = funded_balance(amount="10.00")

    response = finance.post(
        adjust_url(balance), {"direction": "deposit", "amount": "5.25", "reason": "Goodwill credit, ticket 42"}
    )

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == balance_url(balance)
    balance.refresh_from_db()
    assert balance.amount == Decimal("15.25")
    entry = balance.entries.get(sequence=2)
    assert entry.type == TransactionType.DEPOSIT
    assert entry.amount == Decimal("5.25")
    assert entry.balance_after == Decimal("15.25")
    assert entry.source == TransactionSource.ADMIN
    assert entry.created_by == finance_user
    assert entry.description == "Goodwill credit, ticket 42"
    assert LogEntry.objects.filter(user=finance_user, object_id=str(balance.pk)).exists()


def test_finance_withdraws_from_a_balance_through_the_ledger(finance, finance_user):
    balance = funded_balance(currency="JPY", amount="1000")

    response = finance.post(adjust_url(balance), {"direction": "withdrawal", "amount": "300", "reason": "Chargeback"})

    assert response.status_code == HTTPStatus.FOUND
    balance.refresh_from_db()
    assert balance.amount == Decimal("700")
    entry = balance.entries.get(sequence=2)
    assert (entry.type, entry.source, entry.created_by) == (
        TransactionType.WITHDRAWAL,
        TransactionSource.ADMIN,
        finance_user,
    )


def test_adjustment_beyond_the_balance_is_an_admin_error_and_writes_nothing(finance):
    balance = funded_balance(amount="10.00")

    response = finance.post(adjust_url(balance), {"direction": "withdrawal", "amount": "25.00", "reason": "Oops"})

    assert response.status_code == HTTPStatus.OK
    assert "holds 10.00 USD; 25.00 USD was asked" in response.content.decode()
    balance.refresh_from_db()
    assert balance.amount == Decimal("10.00")
    assert balance.entries.count() == 1


def test_adjustment_with_more_decimals_than_the_currency_allows_is_an_admin_error(finance):
    balance = funded_balance(currency="JPY", amount="1000")

    response = finance.post(adjust_url(balance), {"direction": "deposit", "amount": "1.5", "reason": "Typo"})

    assert response.status_code == HTTPStatus.OK
    assert "JPY has no minor unit" in response.content.decode()
    assert balance.entries.count() == 1


def test_adjustment_of_a_frozen_wallet_is_an_admin_error(finance):
    balance = funded_balance(amount="10.00")
    Wallet.objects.filter(pk=balance.wallet_id).update(is_frozen=True)

    response = finance.post(adjust_url(balance), {"direction": "deposit", "amount": "1.00", "reason": "Test"})

    assert response.status_code == HTTPStatus.OK
    assert "is frozen" in response.content.decode()
    assert balance.entries.count() == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"direction": "deposit", "amount": "5.00", "reason": "   "}, "reason"),
        ({"direction": "deposit", "amount": "0", "reason": "Zero"}, "amount"),
        ({"direction": "deposit", "amount": "abc", "reason": "Junk"}, "amount"),
        ({"direction": "sideways", "amount": "5.00", "reason": "Junk"}, "direction"),
    ],
)
def test_adjustment_form_requires_a_reason_a_positive_amount_and_a_direction(finance, data, field):
    balance = funded_balance(amount="10.00")

    response = finance.post(adjust_url(balance), data)

    assert response.status_code == HTTPStatus.OK
    assert field in response.context["form"].errors
    assert balance.entries.count() == 1


def test_support_cannot_adjust_a_balance(support):
    balance = funded_balance(amount="10.00")

    page = support.get(balance_url(balance))
    form = support.get(adjust_url(balance))
    post = support.post(adjust_url(balance), {"direction": "deposit", "amount": "5.00", "reason": "Nope"})

    assert page.status_code == HTTPStatus.OK
    assert adjust_url(balance) not in page.content.decode()
    assert form.status_code == HTTPStatus.FORBIDDEN
    assert post.status_code == HTTPStatus.FORBIDDEN
    balance.refresh_from_db()
    assert balance.amount == Decimal("10.00")
    assert balance.entries.count() == 1


def test_superuser_cannot_type_a_balance_amount_by_hand(root):
    balance = funded_balance(amount="10.00")

    page = root.get(balance_url(balance))
    change = root.post(balance_url(balance), {"amount": "1000000.00", "last_sequence": "99"})
    add = root.get(reverse("admin:wallets_walletbalance_add"))
    delete = root.post(reverse("admin:wallets_walletbalance_delete", args=[balance.pk]), {"post": "yes"})

    assert page.status_code == HTTPStatus.OK
    body = page.content.decode()
    assert 'name="amount"' not in body and 'name="last_sequence"' not in body
    assert adjust_url(balance) in body  # the only way: a ledger entry
    assert change.status_code == HTTPStatus.FORBIDDEN
    assert add.status_code == HTTPStatus.FORBIDDEN
    assert delete.status_code == HTTPStatus.FORBIDDEN
    balance.refresh_from_db()
    assert (balance.amount, balance.last_sequence) == (Decimal("10.00"), 1)


def test_wallet_page_shows_balances_read_only_in_their_minor_unit(root):
    wallet = WalletFactory()
    funded_balance(currency="KWD", amount="1.25", wallet=wallet)
    funded_balance(currency="USD", amount="3", wallet=wallet)

    response = root.get(wallet_url(wallet))

    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert "1.250" in body and "3.00" in body
    assert "balances-0-amount" not in body
    assert 'name="_save"' not in body


# --- freezing -------------------------------------------------------------------------------


def test_finance_freezes_and_unfreezes_wallets_with_the_actions(finance, finance_user):
    first, second = WalletFactory(), WalletFactory()

    frozen = freeze(finance, first, second)
    first.refresh_from_db()
    second.refresh_from_db()
    assert frozen.status_code == HTTPStatus.FOUND
    assert first.is_frozen and second.is_frozen

    unfrozen = freeze(finance, first, action="unfreeze_wallets")
    first.refresh_from_db()
    second.refresh_from_db()
    assert unfrozen.status_code == HTTPStatus.FOUND
    assert not first.is_frozen and second.is_frozen
    assert LogEntry.objects.filter(user=finance_user, object_id=str(first.pk)).count() == 2


def test_a_frozen_wallet_refuses_movements_after_the_admin_freezes_it(finance):
    balance = funded_balance(amount="10.00")
    freeze(finance, balance.wallet)

    response = finance.post(adjust_url(balance), {"direction": "deposit", "amount": "1.00", "reason": "Test"})

    assert "is frozen" in response.content.decode()
    assert balance.entries.count() == 1


def test_support_has_no_freeze_action_and_cannot_freeze(support):
    wallet = WalletFactory()

    page = support.get(WALLETS)
    response = freeze(support, wallet)

    assert page.status_code == HTTPStatus.OK
    assert "freeze_wallets" not in page.content.decode()
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.FOUND)  # "No action selected."
    wallet.refresh_from_db()
    assert not wallet.is_frozen


def test_nobody_adds_edits_or_deletes_a_wallet_through_the_admin(root):
    wallet = WalletFactory(name="Savings")

    add = root.get(reverse("admin:wallets_wallet_add"))
    change = root.post(wallet_url(wallet), {"name": "Renamed", "is_frozen": "on"})
    delete = root.post(reverse("admin:wallets_wallet_delete", args=[wallet.pk]), {"post": "yes"})

    assert (add.status_code, change.status_code, delete.status_code) == (HTTPStatus.FORBIDDEN,) * 3
    wallet.refresh_from_db()
    assert (wallet.name, wallet.is_frozen) == ("Savings", False)


# --- exchange rates -----------------------------------------------------------------------------


def test_finance_adds_a_rate_which_closes_the_current_one(finance, finance_user):
    old = ExchangeRate.objects.get(base_id="USD", quote_id="EUR", valid_to__isnull=True)

    response = finance.post(ADD_RATE, {"base": "USD", "quote": "EUR", "rate": "0.912345"})

    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    old.refresh_from_db()
    current = ExchangeRate.objects.get(base_id="USD", quote_id="EUR", valid_to__isnull=True)
    assert old.valid_to is not None
    assert current.pk != old.pk
    assert current.rate == Decimal("0.912345")
    assert current.created_by == finance_user
    assert current.valid_from == old.valid_to
    assert LogEntry.objects.filter(user=finance_user, object_id=str(current.pk)).exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"base": "USD", "quote": "USD", "rate": "1"}, "quote"),
        ({"base": "USD", "quote": "EUR", "rate": "0"}, "rate"),
        ({"base": "USD", "quote": "EUR", "rate": "-1.5"}, "rate"),
        ({"base": "USD", "quote": "XXX", "rate": "1.5"}, "quote"),
    ],
)
def test_rate_form_refuses_a_pair_of_one_currency_and_a_rate_that_is_not_positive(finance, data, field):
    before = ExchangeRate.objects.count()

    response = finance.post(ADD_RATE, data)

    assert response.status_code == HTTPStatus.OK
    assert field in response.context["adminform"].form.errors
    assert ExchangeRate.objects.count() == before


def test_old_rates_are_read_only_for_everyone(root):
    old = ExchangeRate.objects.get(base_id="USD", quote_id="EUR", valid_to__isnull=True)
    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.5"), created_by=None)
    old.refresh_from_db()
    rate_before = old.rate

    page = root.get(reverse("admin:wallets_exchangerate_change", args=[old.pk]))
    change = root.post(reverse("admin:wallets_exchangerate_change", args=[old.pk]), {"rate": "99"})
    delete = root.post(reverse("admin:wallets_exchangerate_delete", args=[old.pk]), {"post": "yes"})

    assert page.status_code == HTTPStatus.OK
    assert 'name="rate"' not in page.content.decode()
    assert change.status_code == HTTPStatus.FORBIDDEN
    assert delete.status_code == HTTPStatus.FORBIDDEN
    old.refresh_from_db()
    assert old.rate == rate_before


def test_support_cannot_add_a_rate(support):
    before = ExchangeRate.objects.count()

    response = support.post(ADD_RATE, {"base": "USD", "quote": "EUR", "rate": "2"})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert ExchangeRate.objects.count() == before


def test_rates_changelist_filters_current_rates(support):
    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.5"), created_by=None)

    current = support.get(RATES, {"current": "yes"})
    history = support.get(RATES, {"current": "no"})

    assert all(rate.valid_to is None for rate in current.context["cl"].result_list)
    assert [(rate.base_id, rate.quote_id) for rate in history.context["cl"].result_list] == [("USD", "EUR")]


# --- currencies -----------------------------------------------------------------------------


def test_currency_minor_unit_cannot_change_once_created(root):
    page = root.get(reverse("admin:wallets_currency_change", args=["USD"]))
    root.post(reverse("admin:wallets_currency_change", args=["USD"]), {"name": "US dollar", "minor_unit": "0"})

    assert 'name="minor_unit"' not in page.content.decode()
    assert Currency.objects.get(pk="USD").minor_unit == 2


# --- query counts ---------------------------------------------------------------------------


def _extra_currencies(count: int) -> list[Currency]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = [f"Q{letters[i // 26]}{letters[i % 26]}" for i in range(count)]
    return [Currency.objects.create(code=code, name=f"Test {code}", minor_unit=2) for code in codes]


@pytest.mark.parametrize("url", [WALLETS, BALANCES, RATES, CURRENCIES])
def test_changelists_run_the_same_number_of_queries_for_3_and_30_rows(support, django_assert_max_num_queries, url):
    currencies = _extra_currencies(30)

    def add_rows(count: int) -> None:
        for currency in currencies[:count]:
            BalanceFactory(currency=currency)
            exchange_rate_create(base="USD", quote=currency.code, rate=Decimal("1.5"), created_by=None)

    add_rows(3)
    support.get(url)
    with django_assert_max_num_queries(QUERY_BOUND):
        few = round_trips(support, url)
    currencies = currencies[3:]
    add_rows(27)
    with django_assert_max_num_queries(QUERY_BOUND):
        many = round_trips(support, url)

    assert many == few


def test_wallet_page_runs_the_same_number_of_queries_for_3_and_30_balances(support, django_assert_max_num_queries):
    wallet = WalletFactory()
    currencies = _extra_currencies(30)
    for currency in currencies[:3]:
        BalanceFactory(wallet=wallet, currency=currency)
    support.get(wallet_url(wallet))

    with django_assert_max_num_queries(QUERY_BOUND):
        few = round_trips(support, wallet_url(wallet))
    for currency in currencies[3:]:
        BalanceFactory(wallet=wallet, currency=currency)
    with django_assert_max_num_queries(QUERY_BOUND):
        many = round_trips(support, wallet_url(wallet))

    assert wallet.balances.count() == 30
    assert many == few


def test_balance_and_adjust_pages_run_a_bounded_number_of_queries(finance, django_assert_max_num_queries):
    balance = funded_balance(amount="10.00")
    for _ in range(30):
        finance.post(adjust_url(balance), {"direction": "deposit", "amount": "1", "reason": "Load"})
    assert Transaction.objects.filter(wallet_balance=balance).count() == 31

    with django_assert_max_num_queries(QUERY_BOUND):
        page = finance.get(balance_url(balance))
    with django_assert_max_num_queries(QUERY_BOUND):
        form = finance.get(adjust_url(balance))

    assert page.status_code == form.status_code == HTTPStatus.OK
    assert "40.00" in page.content.decode()
