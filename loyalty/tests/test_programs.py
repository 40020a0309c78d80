"""Programmes: the database holds one active programme per currency and the earn rate's range; Finance manages them
in the back office, with their totals beside them; rewards are read-only."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from loyalty.models import LoyaltyProgram, Reward, RewardStatus
from loyalty.services import program_save
from tests.admin_support import round_trips
from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.loyalty import book_all, program_in
from transactions.models import Transaction, TransactionType
from transactions.services import payment_create, refund_create

pytestmark = pytest.mark.django_db

PROGRAMS = reverse("admin:loyalty_loyaltyprogram_changelist")
ADD_PROGRAM = reverse("admin:loyalty_loyaltyprogram_add")
REWARDS = reverse("admin:loyalty_reward_changelist")


def operator_balance(currency: str = "USD", amount: str = "100.00"):
    return funded_balance(currency=currency, amount=amount, wallet=WalletFactory(owner=UserFactory(is_staff=True)))


# --- the database -------------------------------------------------------------------------------


def test_the_database_refuses_a_second_active_programme_in_a_currency():
    program_in("USD")
    funding = operator_balance()

    with pytest.raises(IntegrityError, match="loyalty_one_active_program"), transaction.atomic():
        LoyaltyProgram.objects.create(
            name="Second",
            currency_id="USD",
            earn_rate=100,
            valid_from=timezone.now(),
            is_active=True,
            funding_balance=funding,
        )

    # Inactive ones, and active ones in other currencies, are fine.
    program_in("USD", active=False)
    program_in("EUR")
    assert LoyaltyProgram.objects.filter(is_active=True).count() == 2


@pytest.mark.parametrize("earn_rate", [0, 5001])
def test_the_database_refuses_an_earn_rate_outside_1_to_5000_basis_points(earn_rate):
    funding = operator_balance()
    with pytest.raises(IntegrityError, match="loyalty_earn_rate_range"), transaction.atomic():
        LoyaltyProgram.objects.create(
            name="Odd",
            currency_id="USD",
            earn_rate=earn_rate,
            valid_from=timezone.now(),
            funding_balance=funding,
        )


def test_the_database_refuses_a_programme_that_ends_before_it_starts():
    now = timezone.now()
    funding = operator_balance()
    with pytest.raises(IntegrityError, match="loyalty_valid_range"), transaction.atomic():
        LoyaltyProgram.objects.create(
            name="Backwards",
            currency_id="USD",
            earn_rate=100,
            valid_from=now,
            valid_to=now - timedelta(days=1),
            funding_balance=funding,
        )


def test_saving_a_second_active_programme_is_refused_with_a_message():
    program_in("USD")
    second = LoyaltyProgram(
        name="Second",
        currency_id="USD",
        earn_rate=100,
        valid_from=timezone.now(),
        is_active=True,
        funding_balance=operator_balance(),
    )

    with pytest.raises(ValidationError, match="already active in this currency"):
        program_save(program=second, by=None)

    assert LoyaltyProgram.objects.count() == 1


@pytest.mark.parametrize(
    ("currency", "funding", "cap", "field"),
    [
        ("USD", "EUR", None, "funding_balance"),  # another currency
        ("USD", "USD-customer", None, "funding_balance"),  # not an operator's
        ("JPY", "JPY", "5.5", "max_per_payment"),  # JPY has no minor unit
        ("KWD", "KWD", "0.0005", "max_per_payment"),
    ],
)
def test_a_programme_is_refused_a_funding_balance_or_cap_that_does_not_fit(currency, funding, cap, field):
    if funding == "USD-customer":
        balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=UserFactory()))
    else:
        balance = operator_balance(funding)
    program = LoyaltyProgram(
        name="Odd",
        currency_id=currency,
        earn_rate=100,
        max_per_payment=None if cap is None else Decimal(cap),
        valid_from=timezone.now(),
        funding_balance=balance,
    )

    with pytest.raises(ValidationError) as excinfo:
        program_save(program=program, by=None)

    assert field in excinfo.value.message_dict
    assert not LoyaltyProgram.objects.exists()


# --- the back office --------------------------------------------------------------------------


def program_form(balance, **changes: object) -> dict[str, object]:
    now = timezone.now()
    return {
        "name": "Winter cashback",
        "currency": "USD",
        "earn_rate": "150",
        "max_per_payment": "5.00",
        "valid_from_0": now.strftime("%Y-%m-%d"),
        "valid_from_1": now.strftime("%H:%M:%S"),
        "valid_to_0": "",
        "valid_to_1": "",
        "is_active": "on",
        "funding_balance": str(balance.pk),
        **changes,
    }


def test_finance_adds_a_programme_and_payments_earn_at_once(finance, user):
    funding = operator_balance()

    response = finance.post(ADD_PROGRAM, program_form(funding))

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:3000]
    program = LoyaltyProgram.objects.get()
    assert (program.earn_rate, program.max_per_payment, program.is_active) == (150, Decimal("5.00"), True)
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    payment = payment_create(
        wallet_balance_id=balance.pk, amount=Decimal("10.00"), merchant="S", owner=user, created_by=user
    )
    assert Reward.objects.get(payment=payment).amount == Decimal("0.15")


def test_the_form_refuses_a_second_active_programme_and_a_cap_with_a_comma(finance):
    program_in("USD")
    funding = operator_balance()

    second = finance.post(ADD_PROGRAM, program_form(funding))
    comma = finance.post(ADD_PROGRAM, program_form(funding, is_active="", max_per_payment="5,00"))

    assert second.status_code == HTTPStatus.OK
    assert "already active in this currency" in second.content.decode()
    assert comma.status_code == HTTPStatus.OK
    assert "commas are not accepted" in comma.content.decode()
    assert LoyaltyProgram.objects.count() == 1


def test_support_sees_programmes_and_rewards_but_cannot_add_or_change_them(support):
    program = program_in("USD")

    assert support.get(PROGRAMS).status_code == HTTPStatus.OK
    assert support.get(REWARDS).status_code == HTTPStatus.OK
    assert support.get(ADD_PROGRAM).status_code == HTTPStatus.FORBIDDEN
    change = reverse("admin:loyalty_loyaltyprogram_change", args=[program.pk])
    assert support.post(change, program_form(program.funding_balance, earn_rate="4000")).status_code == (
        HTTPStatus.FORBIDDEN
    )
    program.refresh_from_db()
    assert program.earn_rate == 100


def test_nobody_deletes_a_programme_or_edits_a_reward(root, user):
    program = program_in("USD")
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    payment_create(wallet_balance_id=balance.pk, amount=Decimal("10.00"), merchant="S", owner=user, created_by=user)
    reward = Reward.objects.get()

    assert root.get(reverse("admin:loyalty_loyaltyprogram_delete", args=[program.pk])).status_code == (
        HTTPStatus.FORBIDDEN
    )
    assert root.get(reverse("admin:loyalty_reward_add")).status_code == HTTPStatus.FORBIDDEN
    page = root.get(reverse("admin:loyalty_reward_change", args=[reward.pk]))
    assert page.status_code == HTTPStatus.OK
    assert 'name="_save"' not in page.content.decode()


def test_the_programme_list_shows_issued_reversed_pending_unfunded_and_funding_left(finance, user):
    program = program_in("USD", earn_rate=1000, funding="15.00")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    pay = {"wallet_balance_id": balance.pk, "merchant": "S", "owner": user, "created_by": user}
    first = payment_create(amount=Decimal("100.00"), **pay)  # 10.00
    payment_create(amount=Decimal("100.00"), **pay)  # 10.00: only 5.00 left, unfunded
    book_all()
    refund_create(payment_id=first.pk, amount=Decimal("30.00"), created_by=None)  # 3.00 back
    payment_create(amount=Decimal("20.00"), **pay)  # 2.00 pending

    page = finance.get(PROGRAMS).content.decode()

    # Issued, reversed, pending, and what is left of the funding.
    for shown in ("10.00\u00a0USD", "3.00\u00a0USD", "2.00\u00a0USD", "8.00\u00a0USD"):
        assert shown in page, shown
    program.refresh_from_db()
    assert program.unfunded_count == 1
    assert round_trips(finance, PROGRAMS) <= 8


def test_the_reward_list_reads_a_page_in_a_fixed_number_of_queries(support, user):
    program_in("USD")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    for _ in range(5):
        payment_create(wallet_balance_id=balance.pk, amount=Decimal("10.00"), merchant="S", owner=user, created_by=user)
    few = round_trips(support, REWARDS)
    for _ in range(5):
        payment_create(wallet_balance_id=balance.pk, amount=Decimal("10.00"), merchant="S", owner=user, created_by=user)

    assert round_trips(support, REWARDS) == few


# --- the demo data --------------------------------------------------------------------------


def test_seed_demo_creates_a_funded_programme_and_books_the_cashback_it_earns():
    call_command("seed_demo", movements=60, stdout=io.StringIO(), stderr=io.StringIO())

    program = LoyaltyProgram.objects.get(name="Demo cashback")
    assert program.is_active and program.currency_id == "USD"
    assert program.funding_balance.wallet.owner.is_staff
    assert Reward.objects.exists()
    assert not Reward.objects.filter(status=RewardStatus.PENDING).exists()
    assert (
        Transaction.objects.filter(type=TransactionType.LOYALTY).count()
        == Reward.objects.filter(status=RewardStatus.BOOKED).count()
    )
    out = io.StringIO()
    call_command("reconcile", stdout=out, stderr=io.StringIO())
    assert "OK: every invariant holds." in out.getvalue()

    again = io.StringIO()
    call_command("seed_demo", movements=60, stdout=again, stderr=io.StringIO())
    assert "Already seeded: nothing to add." in again.getvalue()
    assert LoyaltyProgram.objects.count() == 1
