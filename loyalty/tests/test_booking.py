"""Booking: pending rewards moved in batches from the funding balance, or recorded unfunded; never money invented."""

from __future__ import annotations

import io
import logging
from decimal import Decimal

import pytest
from django.core.management import call_command

from events.models import Event, EventType
from loyalty.models import LoyaltyProgram, Reward, RewardStatus
from tests.factories import WalletFactory, funded_balance
from tests.invariants import assert_ledger_invariants
from tests.loyalty import book_all, program_in
from transactions.models import Transaction, TransactionType
from transactions.services import payment_create
from wallets.models import WalletBalance
from wallets.services import wallet_set_frozen

pytestmark = pytest.mark.django_db


def pay(balance, amount: str) -> Transaction:
    owner = balance.wallet.owner
    return payment_create(
        wallet_balance_id=balance.pk, amount=Decimal(amount), merchant="Shop", owner=owner, created_by=owner
    )


def amount_of(balance) -> Decimal:
    return WalletBalance.objects.get(pk=balance.pk).amount


def test_booking_moves_the_cashback_from_the_funding_balance_under_the_payments_reference(user):
    program = program_in("USD", earn_rate=200, funding="100.00")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    first, second = pay(balance, "100.00"), pay(balance, "50.00")

    done = book_all()

    assert (done.booked, done.unfunded) == (2, 0)
    assert amount_of(balance) == Decimal("350.00") + Decimal("2.00") + Decimal("1.00")
    assert amount_of(program.funding_balance) == Decimal("97.00")
    for payment, cashback in ((first, Decimal("2.00")), (second, Decimal("1.00"))):
        legs = Transaction.objects.filter(reference=payment.reference).exclude(pk=payment.pk)
        assert sorted((leg.type, leg.wallet_balance_id, leg.amount) for leg in legs) == [
            (TransactionType.LOYALTY, balance.pk, cashback),
            (TransactionType.LOYALTY_FUNDING, program.funding_balance_id, cashback),
        ]
        reward = Reward.objects.get(payment=payment)
        assert (reward.status, reward.booked_amount, reward.funding_balance_id) == (
            RewardStatus.BOOKED,
            cashback,
            program.funding_balance_id,
        )
        assert reward.booked_at is not None
    assert_ledger_invariants()


def test_booking_tells_the_payer_and_the_operator_each_movement(user):
    program = program_in("USD", funding="100.00")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    payments = [pay(balance, "10.00"), pay(balance, "20.00")]
    before = Event.objects.filter(stream_id=user.pk).count()

    book_all()

    told = list(Event.objects.filter(stream_id=user.pk).order_by("sequence"))
    assert [event.sequence for event in told] == list(range(1, len(told) + 1))  # no gap, several in one statement
    assert [(event.type, event.reference) for event in told[before:]] == [
        (EventType.MOVEMENT_CREATED, payment.reference) for payment in payments
    ]
    operator = program.funding_balance.wallet.owner_id
    operator_told = Event.objects.filter(stream_id=operator, reference__in=[p.reference for p in payments])
    assert operator_told.count() == 2


def test_a_second_round_books_nothing_again(user):
    program_in("USD")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    pay(balance, "100.00")
    book_all()

    again = book_all()

    assert (again.pending, again.booked) == (0, 0)
    assert Transaction.objects.filter(type=TransactionType.LOYALTY).count() == 1


def test_a_funding_balance_that_cannot_cover_a_reward_leaves_it_unfunded(user, caplog):
    program = program_in("USD", earn_rate=1000, funding="1.50")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    covered = pay(balance, "10.00")  # 1.00
    uncovered = pay(balance, "10.00")  # 1.00, only 0.50 left
    small = pay(balance, "5.00")  # 0.50: still fits after the one that did not

    with caplog.at_level(logging.WARNING, logger="wallet.loyalty"):
        done = book_all()

    assert (done.booked, done.unfunded) == (2, 1)
    statuses = {reward.payment_id: reward.status for reward in Reward.objects.all()}
    assert statuses == {
        covered.pk: RewardStatus.BOOKED,
        uncovered.pk: RewardStatus.UNFUNDED,
        small.pk: RewardStatus.BOOKED,
    }
    assert amount_of(program.funding_balance) == Decimal("0.00")
    assert amount_of(balance) == Decimal("475.00") + Decimal("1.50")
    assert not Transaction.objects.filter(reference=uncovered.reference).exclude(pk=uncovered.pk).exists()
    program.refresh_from_db()
    assert (program.unfunded_count, program.unfunded_amount) == (1, Decimal("1.00"))
    warning = next(record for record in caplog.records if "unfunded" in record.getMessage())
    assert warning.levelno == logging.WARNING and warning.rewards == 1 and warning.amount == "1.00"
    event = Event.objects.get(type=EventType.LOYALTY_UNFUNDED)
    assert event.user_id == user.pk
    assert (event.data["payment_id"], event.data["status"], event.data["amount"]) == (
        str(uncovered.pk),
        "unfunded",
        "1.00",
    )
    assert_ledger_invariants()


def test_a_drained_funding_balance_never_fails_a_payment(user):
    program_in("USD", earn_rate=5000, funding="0.01")
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))

    payments = [pay(balance, "10.00") for _ in range(3)]
    book_all()

    assert amount_of(balance) == Decimal("70.00")
    assert [Reward.objects.get(payment=payment).status for payment in payments] == [RewardStatus.UNFUNDED] * 3


def test_a_frozen_payer_keeps_its_reward_pending_until_unfrozen(user):
    program_in("USD")
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    payment = pay(balance, "50.00")
    wallet_set_frozen(wallet_id=balance.wallet_id, frozen=True)

    assert book_all().booked == 0
    assert Reward.objects.get(payment=payment).status == RewardStatus.PENDING

    wallet_set_frozen(wallet_id=balance.wallet_id, frozen=False)
    assert book_all().booked == 1
    assert amount_of(balance) == Decimal("50.50")


def test_a_frozen_funding_wallet_books_nothing_and_fails_nothing(user):
    program = program_in("USD")
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    wallet_set_frozen(wallet_id=program.funding_balance.wallet_id, frozen=True)
    payment = pay(balance, "50.00")

    done = book_all()

    assert (done.booked, done.left_pending) == (0, 1)
    assert Reward.objects.get(payment=payment).status == RewardStatus.PENDING


def test_the_command_books_once_and_says_what_it_did(user):
    program_in("USD")
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    pay(balance, "50.00")
    out = io.StringIO()

    call_command("book_loyalty", stdout=out)

    assert "Booked 1 reward(s), 0 unfunded" in out.getvalue()
    assert Reward.objects.get().status == RewardStatus.BOOKED


def test_rewards_of_two_programmes_are_booked_from_their_own_funding(user):
    usd, eur = program_in("USD", funding="10.00"), program_in("EUR", funding="10.00")
    pay(funded_balance(amount="100.00", wallet=WalletFactory(owner=user)), "50.00")
    pay(funded_balance(currency="EUR", amount="100.00", wallet=WalletFactory(owner=user)), "20.00")

    assert book_all().booked == 2

    assert amount_of(usd.funding_balance) == Decimal("9.50")
    assert amount_of(eur.funding_balance) == Decimal("9.80")
    assert LoyaltyProgram.objects.filter(unfunded_count=0).count() == 2


def test_a_large_batch_books_every_reward_under_its_own_reference(user, other_user):
    # More entries than a posting sends as VALUES: the batch's entries go as one array per column.
    program = program_in("USD", funding="100.00")
    mine = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    theirs = funded_balance(amount="500.00", wallet=WalletFactory(owner=other_user))
    payments = [pay(mine if index % 3 else theirs, f"{10 + index}.00") for index in range(12)]

    assert book_all().booked == 12

    for payment in payments:
        cashback = Decimal(payment.amount) / 100
        legs = Transaction.objects.filter(reference=payment.reference).exclude(pk=payment.pk)
        assert sorted((leg.type, leg.wallet_balance_id, leg.amount) for leg in legs) == [
            (TransactionType.LOYALTY, payment.wallet_balance_id, cashback),
            (TransactionType.LOYALTY_FUNDING, program.funding_balance_id, cashback),
        ]
    funding_entries = Transaction.objects.filter(wallet_balance_id=program.funding_balance_id).order_by("sequence")
    assert [entry.sequence for entry in funding_entries] == list(range(1, 14))
    assert_ledger_invariants()
