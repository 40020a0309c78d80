"""Wallets, balances, currencies and rates in the admin: adjustments, freezing and rates go through the services,
each after a confirmation page, with strict number input and a required reason."""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from tests.admin_support import confirm, post_and_confirm, review, round_trips
from tests.factories import BalanceFactory, UserFactory, WalletFactory, funded_balance
from transactions.models import Transaction, TransactionSource, TransactionType
from transactions.services import deposit_create
from wallets.models import Currency, ExchangeRate, StaffAction, Wallet, WalletBalance
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


def freeze_url(wallet: Wallet) -> str:
    return reverse("admin:wallets_wallet_freeze", args=[wallet.pk])


def freeze(client, wallet: Wallet, *, target: str = "freeze", reason: str = "Fraud report, ticket 7"):
    return post_and_confirm(client, freeze_url(wallet), {"target": target, "reason": reason})


def current_usd_eur() -> ExchangeRate:
    return ExchangeRate.objects.get(base_id="USD", quote_id="EUR", valid_to__isnull=True)


# --- balance adjustments ----------------------------------------------------------------------


def test_finance_deposits_into_a_balance_through_the_ledger(finance, finance_user):
    balance = funded_balance(amount="10.00")

    response = post_and_confirm(
        finance, adjust_url(balance), {"direction": "deposit", "amount": "5.25", "reason": "Goodwill credit, ticket 42"}
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

    response = post_and_confirm(
        finance, adjust_url(balance), {"direction": "withdrawal", "amount": "300", "reason": "Chargeback"}
    )

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


def test_finance_freezes_and_unfreezes_a_wallet_from_its_page_with_a_reason(finance, finance_user):
    wallet = WalletFactory()

    page = finance.get(wallet_url(wallet))
    frozen = freeze(finance, wallet, reason="Fraud report, ticket 7")
    wallet.refresh_from_db()
    assert frozen.status_code == HTTPStatus.FOUND
    assert wallet.is_frozen
    frozen_page = finance.get(wallet_url(wallet))

    unfrozen = freeze(finance, wallet, target="unfreeze", reason="Cleared, ticket 7")
    wallet.refresh_from_db()

    assert freeze_url(wallet) in page.content.decode() and "Freeze wallet" in page.content.decode()
    assert "Unfreeze wallet" in frozen_page.content.decode() and "wallet-frozen" in frozen_page.content.decode()
    assert unfrozen.status_code == HTTPStatus.FOUND
    assert not wallet.is_frozen
    actions = list(StaffAction.objects.order_by("created_at").values_list("action", "reason", "staff", "target_id"))
    assert actions == [
        (StaffAction.Action.WALLET_FROZEN, "Fraud report, ticket 7", finance_user.pk, str(wallet.pk)),
        (StaffAction.Action.WALLET_UNFROZEN, "Cleared, ticket 7", finance_user.pk, str(wallet.pk)),
    ]
    messages = list(
        LogEntry.objects.filter(user=finance_user, object_id=str(wallet.pk)).values_list("change_message", flat=True)
    )
    assert sorted(messages) == sorted(
        [
            f"Froze wallet {wallet.name!r} of {wallet.owner.email}. Reason: Fraud report, ticket 7",
            f"Unfroze wallet {wallet.name!r} of {wallet.owner.email}. Reason: Cleared, ticket 7",
        ]
    )


def test_freezing_asks_for_a_reason_and_a_confirmation_before_it_freezes(finance):
    wallet = WalletFactory()

    no_reason = finance.post(freeze_url(wallet), {"target": "freeze", "reason": "  "})
    reviewed = review(finance, freeze_url(wallet), {"target": "freeze", "reason": "Court order"})

    assert "reason" in no_reason.context["form"].errors
    assert "Court order" in reviewed.content.decode()
    wallet.refresh_from_db()
    assert not wallet.is_frozen
    assert not StaffAction.objects.exists()


def test_a_confirmation_for_a_wallet_frozen_meanwhile_does_nothing(finance):
    wallet = WalletFactory()
    reviewed = review(finance, freeze_url(wallet), {"target": "freeze", "reason": "Court order"})
    Wallet.objects.filter(pk=wallet.pk).update(is_frozen=True)

    response = confirm(finance, freeze_url(wallet), reviewed)

    assert response.status_code == HTTPStatus.FOUND
    assert not StaffAction.objects.exists()


def test_frozen_wallets_wear_a_red_badge_in_the_wallet_and_balance_lists(support):
    balance = funded_balance(amount="10.00")
    Wallet.objects.filter(pk=balance.wallet_id).update(is_frozen=True)

    wallets = support.get(WALLETS).content.decode()
    balances = support.get(BALANCES).content.decode()
    balance_page = support.get(balance_url(balance)).content.decode()

    for body in (wallets, balances, balance_page):
        assert 'class="wallet-frozen"' in body
        assert "icon-yes.svg" not in body  # not the green tick of a boolean column


def test_a_frozen_wallet_refuses_movements_after_the_admin_freezes_it(finance):
    balance = funded_balance(amount="10.00")
    freeze(finance, balance.wallet)

    form = finance.get(adjust_url(balance))
    response = finance.post(adjust_url(balance), {"direction": "deposit", "amount": "1.00", "reason": "Test"})

    assert 'id="frozen-warning"' in form.content.decode()
    assert "is frozen" in response.content.decode()
    assert balance.entries.count() == 1


def test_a_wallet_frozen_between_review_and_confirmation_books_nothing(finance):
    balance = funded_balance(amount="10.00")
    reviewed = review(finance, adjust_url(balance), {"direction": "deposit", "amount": "1.00", "reason": "Test"})
    Wallet.objects.filter(pk=balance.wallet_id).update(is_frozen=True)

    response = confirm(finance, adjust_url(balance), reviewed)

    assert response.status_code == HTTPStatus.OK
    assert "is frozen" in response.content.decode()
    balance.refresh_from_db()
    assert (balance.amount, balance.entries.count()) == (Decimal("10.00"), 1)
    assert not StaffAction.objects.exists()


def test_support_has_no_freeze_button_and_cannot_freeze(support):
    wallet = WalletFactory()

    page = support.get(wallet_url(wallet))
    form = support.get(freeze_url(wallet))
    response = support.post(freeze_url(wallet), {"target": "freeze", "reason": "Nope", "confirm": "yes"})

    assert page.status_code == HTTPStatus.OK
    assert freeze_url(wallet) not in page.content.decode()
    assert form.status_code == response.status_code == HTTPStatus.FORBIDDEN
    wallet.refresh_from_db()
    assert not wallet.is_frozen


def test_the_wallet_list_has_no_bulk_freeze_action(finance):
    wallet = WalletFactory()

    page = finance.get(WALLETS)
    response = finance.post(WALLETS, {"action": "freeze_wallets", "_selected_action": [str(wallet.pk)]})

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
    old = current_usd_eur()

    response = post_and_confirm(
        finance, ADD_RATE, {"base": "USD", "quote": "EUR", "rate": "0.912345", "reason": "ECB fixing"}
    )

    assert response.status_code == HTTPStatus.FOUND
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
        ({"base": "USD", "quote": "USD", "rate": "1", "reason": "r"}, "quote"),
        ({"base": "USD", "quote": "EUR", "rate": "0", "reason": "r"}, "rate"),
        ({"base": "USD", "quote": "EUR", "rate": "-1.5", "reason": "r"}, "rate"),
        ({"base": "USD", "quote": "XXX", "rate": "1.5", "reason": "r"}, "quote"),
        ({"base": "USD", "quote": "EUR", "rate": "1.5", "reason": " "}, "reason"),
    ],
)
def test_rate_form_refuses_a_pair_of_one_currency_and_a_rate_that_is_not_positive(finance, data, field):
    before = ExchangeRate.objects.count()

    response = finance.post(ADD_RATE, data)

    assert response.status_code == HTTPStatus.OK
    assert field in response.context["form"].errors
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

    page = support.get(RATES)
    response = support.post(ADD_RATE, {"base": "USD", "quote": "EUR", "rate": "2", "reason": "r", "confirm": "yes"})

    assert ADD_RATE not in page.content.decode()

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
        deposit_create(wallet_balance_id=balance.pk, amount=Decimal(1), owner=None, created_by=None)
    assert Transaction.objects.filter(wallet_balance=balance).count() == 31

    with django_assert_max_num_queries(QUERY_BOUND):
        page = finance.get(balance_url(balance))
    with django_assert_max_num_queries(QUERY_BOUND):
        form = finance.get(adjust_url(balance))

    assert page.status_code == form.status_code == HTTPStatus.OK
    assert "40.00" in page.content.decode()


# --- strict input, confirmation, reasons and history: adjustments ----------------------------------

TYPOS = [
    ("1e3", "exponents"),
    ("1E3", "exponents"),
    ("1,000.00", "commas"),
    ("1,5", "commas"),
    ("1 000", "spaces"),
    ("1'000", "thousands separators"),
    ("1_000", "thousands separators"),
    ("١٠٠", "digits 0-9"),
    ("+5", "plain number"),
    ("5.", "digits on both sides"),
    ("-5", "greater than zero"),
    ("NaN", "plain number"),
]


@pytest.mark.parametrize(("typed", "explained"), TYPOS)
def test_adjustment_refuses_anything_but_plain_digits_next_to_the_amount_field(finance, typed, explained):
    balance = funded_balance(amount="10.00")

    response = finance.post(adjust_url(balance), {"direction": "deposit", "amount": typed, "reason": "Typo"})

    assert response.status_code == HTTPStatus.OK
    assert not response.context["confirming"]
    errors = response.context["form"].errors
    assert list(errors) == ["amount"]
    assert explained in errors["amount"][0]
    assert 'class="form-row field-amount errors"' in response.content.decode()
    balance.refresh_from_db()
    assert (balance.amount, balance.entries.count()) == (Decimal("10.00"), 1)
    assert not StaffAction.objects.exists()


def test_adjustment_page_names_the_owner_wallet_currency_and_current_amount(finance):
    owner = UserFactory(name="Ada Lovelace", email="ada@example.com")
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=owner, name="Main USD"))

    body = finance.get(adjust_url(balance)).content.decode()

    assert "Ada Lovelace &lt;ada@example.com&gt;" in body
    assert "Main USD" in body and str(balance.wallet_id) in body
    assert "10.00 USD" in body
    assert 'class="wallet-active"' in body


def test_adjustment_first_shows_current_and_resulting_balance_and_books_nothing(finance):
    balance = funded_balance(amount="10.00")

    reviewed = review(finance, adjust_url(balance), {"direction": "deposit", "amount": "1000", "reason": "Ticket 9"})

    body = reviewed.content.decode()
    assert "10.00 → <strong" in body and "1010.00</strong> USD" in body
    assert "+1000.00 USD" in body and "Ticket 9" in body
    balance.refresh_from_db()
    assert (balance.amount, balance.entries.count()) == (Decimal("10.00"), 1)
    assert not StaffAction.objects.exists()
    assert not LogEntry.objects.exists()


def test_adjustment_confirmation_records_the_reason_in_the_history_the_admin_log_and_the_audit_log(
    finance, finance_user, caplog, django_capture_on_commit_callbacks
):
    balance = funded_balance(amount="10.00")

    with caplog.at_level("INFO", logger="wallet.audit"), django_capture_on_commit_callbacks(execute=True):
        response = post_and_confirm(
            finance, adjust_url(balance), {"direction": "withdrawal", "amount": "2.50", "reason": "Chargeback 17"}
        )

    assert response.status_code == HTTPStatus.FOUND
    entry = balance.entries.get(sequence=2)
    assert (entry.type, entry.amount, entry.description) == (
        TransactionType.WITHDRAWAL,
        Decimal("2.50"),
        "Chargeback 17",
    )
    staff_action = StaffAction.objects.get()
    assert (staff_action.staff, staff_action.action, staff_action.reason) == (
        finance_user,
        StaffAction.Action.BALANCE_ADJUSTED,
        "Chargeback 17",
    )
    assert staff_action.target_id == str(balance.pk)
    assert staff_action.details | {} == {
        "direction": "withdrawal",
        "amount": "2.50",
        "currency": "USD",
        "balance_before": "10.00",
        "balance_after": "7.50",
        "entry_id": str(entry.pk),
        "wallet_id": str(balance.wallet_id),
    }
    log = LogEntry.objects.get(user=finance_user, object_id=str(balance.pk))
    assert log.get_change_message() == f"Withdrawal of 2.50 USD (entry {entry.pk}): Chargeback 17"
    staff_lines = [record for record in caplog.records if record.getMessage() == "staff action"]
    assert [(line.action, line.reason) for line in staff_lines] == [("balance_adjusted", "Chargeback 17")]


def test_a_balance_that_moved_between_review_and_confirmation_is_shown_again_with_the_new_numbers(finance):
    balance = funded_balance(amount="10.00")
    reviewed = review(finance, adjust_url(balance), {"direction": "deposit", "amount": "5.00", "reason": "Ticket 3"})
    deposit_create(wallet_balance_id=balance.pk, amount=Decimal("20.00"), owner=None, created_by=None)

    again = confirm(finance, adjust_url(balance), reviewed)

    assert again.status_code == HTTPStatus.OK and again.context["confirming"]
    assert again.context["notice"]
    assert "30.00 → <strong" in again.content.decode() and "35.00</strong>" in again.content.decode()
    balance.refresh_from_db()
    assert (balance.amount, balance.entries.count()) == (Decimal("30.00"), 2)
    assert not StaffAction.objects.exists()

    booked = confirm(finance, adjust_url(balance), again)

    assert booked.status_code == HTTPStatus.FOUND
    balance.refresh_from_db()
    assert (balance.amount, balance.entries.count()) == (Decimal("35.00"), 3)


def test_hidden_fields_of_the_confirmation_are_validated_again(finance):
    balance = funded_balance(amount="10.00")
    reviewed = review(finance, adjust_url(balance), {"direction": "deposit", "amount": "5.00", "reason": "Ticket 3"})

    tampered = confirm(finance, adjust_url(balance), reviewed, amount="5e3")
    no_reason = confirm(finance, adjust_url(balance), reviewed, reason="")

    assert "amount" in tampered.context["form"].errors
    assert "reason" in no_reason.context["form"].errors
    balance.refresh_from_db()
    assert (balance.amount, balance.entries.count()) == (Decimal("10.00"), 1)


def test_support_cannot_confirm_an_adjustment_by_posting_directly(support):
    balance = funded_balance(amount="10.00")

    response = support.post(
        adjust_url(balance),
        {"direction": "deposit", "amount": "5.00", "reason": "Nope", "seen": "1", "confirm": "yes"},
    )

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert balance.entries.count() == 1


# --- strict input, confirmation, reasons and history: rates ----------------------------------------


@pytest.mark.parametrize(("typed", "explained"), [*TYPOS, ("1.0E-2", "exponents"), ("١٫٠٨", "digits 0-9")])
def test_rate_form_refuses_anything_but_plain_digits_next_to_the_rate_field(finance, typed, explained):
    old = current_usd_eur()

    response = finance.post(ADD_RATE, {"base": "USD", "quote": "EUR", "rate": typed, "reason": "Typo"})

    assert response.status_code == HTTPStatus.OK
    errors = response.context["form"].errors
    assert list(errors) == ["rate"]
    assert explained in errors["rate"][0]
    assert current_usd_eur() == old


def test_rate_form_shows_the_current_rates(finance):
    response = finance.get(ADD_RATE, {"base": "USD", "quote": "EUR"})

    body = response.content.decode()
    assert 'id="current-rate">0.91<' in body
    assert "USD → EUR</td><td>0.91</td>" in body


def test_rate_review_shows_old_new_and_the_change_with_a_loud_warning_above_the_threshold(finance):
    old = current_usd_eur()

    big = review(finance, ADD_RATE, {"base": "USD", "quote": "EUR", "rate": "1.08", "reason": "Fixing"})
    small = review(finance, ADD_RATE, {"base": "USD", "quote": "EUR", "rate": "0.92", "reason": "Fixing"})

    assert (big.context["old_rate"], big.context["new_rate"], big.context["change_percent"]) == (
        "0.91",
        "1.08",
        "+18.68",
    )
    assert 'id="rate-warning"' in big.content.decode()
    assert small.context["change_percent"] == "+1.10"
    assert 'id="rate-warning"' not in small.content.decode()
    assert current_usd_eur() == old
    assert not StaffAction.objects.exists()


def test_rate_warning_threshold_is_a_setting(finance, settings):
    settings.ADMIN_RATE_WARN_PERCENT = 20

    reviewed = review(finance, ADD_RATE, {"base": "USD", "quote": "EUR", "rate": "1.08", "reason": "Fixing"})

    assert 'id="rate-warning"' not in reviewed.content.decode()


def test_rate_confirmation_records_the_reason_in_the_history_the_admin_log_and_the_audit_log(
    finance, finance_user, caplog, django_capture_on_commit_callbacks
):
    old = current_usd_eur()

    with caplog.at_level("INFO", logger="wallet.audit"), django_capture_on_commit_callbacks(execute=True):
        post_and_confirm(finance, ADD_RATE, {"base": "USD", "quote": "EUR", "rate": "1.08", "reason": "ECB 2026-12-05"})

    new = current_usd_eur()
    assert new.rate == Decimal("1.08")
    staff_action = StaffAction.objects.get()
    assert (staff_action.staff, staff_action.action, staff_action.reason, staff_action.target_id) == (
        finance_user,
        StaffAction.Action.RATE_SET,
        "ECB 2026-12-05",
        str(new.pk),
    )
    assert staff_action.details["old_rate"] == "0.91" and staff_action.details["change_percent"] == "+18.68"
    assert LogEntry.objects.get(object_id=str(new.pk)).get_change_message() == (
        "Set the USD → EUR rate from 0.91 to 1.08 (+18.68 %). Reason: ECB 2026-12-05"
    )
    assert old.pk != new.pk
    assert [line.reason for line in caplog.records if line.getMessage() == "staff action"] == ["ECB 2026-12-05"]


def test_a_rate_changed_between_review_and_confirmation_is_shown_again_not_replaced(finance):
    reviewed = review(finance, ADD_RATE, {"base": "USD", "quote": "EUR", "rate": "0.95", "reason": "Fixing"})
    meanwhile = exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.5"), created_by=None)

    again = confirm(finance, ADD_RATE, reviewed)

    assert again.status_code == HTTPStatus.OK and again.context["notice"]
    assert (again.context["old_rate"], again.context["change_percent"]) == ("0.5", "+90.00")
    assert current_usd_eur() == meanwhile
    assert not StaffAction.objects.exists()

    done = confirm(finance, ADD_RATE, again)

    assert done.status_code == HTTPStatus.FOUND
    assert current_usd_eur().rate == Decimal("0.95")


# --- the staff-action history ---------------------------------------------------------------

HISTORY = reverse("admin:wallets_staffaction_changelist")


def test_staff_action_history_is_read_only_and_filters_by_staff_action_and_date(finance, finance_user, support):
    balance = funded_balance(amount="10.00")
    post_and_confirm(finance, adjust_url(balance), {"direction": "deposit", "amount": "1", "reason": "One"})
    freeze(finance, balance.wallet, reason="Two")
    other = staff_in_finance_client()
    post_and_confirm(other, ADD_RATE, {"base": "USD", "quote": "EUR", "rate": "0.9", "reason": "Three"})
    today = StaffAction.objects.first().created_at

    by_staff = support.get(HISTORY, {"staff__id__exact": str(finance_user.pk)})
    by_action = support.get(HISTORY, {"action__exact": "wallet_frozen"})
    by_day = support.get(
        HISTORY, {"created_at__year": today.year, "created_at__month": today.month, "created_at__day": today.day}
    )
    one = StaffAction.objects.get(reason="One")
    change = support.post(reverse("admin:wallets_staffaction_change", args=[one.pk]), {"reason": "Edited"})
    add = finance.get(reverse("admin:wallets_staffaction_add"))

    assert {row.reason for row in by_staff.context["cl"].result_list} == {"One", "Two"}
    assert [row.reason for row in by_action.context["cl"].result_list] == ["Two"]
    assert {row.reason for row in by_day.context["cl"].result_list} == {"One", "Two", "Three"}
    assert change.status_code == add.status_code == HTTPStatus.FORBIDDEN
    one.refresh_from_db()
    assert one.reason == "One"


def staff_in_finance_client():
    from tests.admin_support import logged_in, staff_in

    return logged_in(staff_in("Finance"))


def test_change_the_values_goes_back_to_the_form_with_them_filled_in_and_books_nothing(finance):
    balance = funded_balance(amount="10.00")
    reviewed = review(finance, adjust_url(balance), {"direction": "deposit", "amount": "5.00", "reason": "Ticket 3"})

    back = finance.post(adjust_url(balance), {**dict(reviewed.context["hidden_fields"]), "edit": "1"})

    assert not back.context["confirming"]
    assert back.context["form"]["amount"].value() == "5.00"
    assert back.context["form"]["reason"].value() == "Ticket 3"
    assert balance.entries.count() == 1
