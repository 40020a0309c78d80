"""The posting engine on its own: a movement described as data, booked with no change to the engine.

The public movements are tested through `transactions.services`; these tests
post legs the services never build, as a new kind of movement would.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.factories import WalletFactory, funded_balance
from tests.invariants import assert_ledger_invariants
from transactions.models import Transaction, TransactionSource, TransactionType
from transactions.posting.engine import post
from transactions.posting.movement import Booking, Leg, not_frozen
from transactions.posting.planning import Refused, Valid, validate
from wallet_project.errors import DomainError, NotFound

pytestmark = pytest.mark.django_db


class OverTheDailyCap(DomainError):
    code = "over_the_cap"


def ledger_state() -> tuple:
    return tuple(Transaction.objects.order_by("pk").values_list("pk", flat=True))


@pytest.fixture
def two_balances(user):
    return (
        funded_balance(wallet=WalletFactory(owner=user), amount="100.00"),
        funded_balance(wallet=WalletFactory(owner=user), amount="5.00"),
    )


def test_a_movement_the_services_do_not_know_is_posted_from_its_legs(two_balances):
    pool, member = two_balances
    legs = [
        Leg(pool.pk, TransactionType.WITHDRAWAL, Decimal("2.50")),
        Leg(member.pk, TransactionType.DEPOSIT, Decimal("2.50")),
    ]

    entries = post(legs, Booking(None, TransactionSource.SYSTEM, "Cashback"))

    assert [(entry.wallet_balance_id, entry.type) for entry in entries] == [
        (pool.pk, TransactionType.WITHDRAWAL),
        (member.pk, TransactionType.DEPOSIT),
    ]
    assert entries[0].reference == entries[1].reference
    pool.refresh_from_db()
    member.refresh_from_db()
    assert (pool.amount, member.amount) == (Decimal("97.50"), Decimal("7.50"))
    assert_ledger_invariants([pool.pk, member.pk])


def test_a_legs_own_check_runs_on_the_locked_row_and_its_refusal_leaves_no_trace(two_balances):
    pool, member = two_balances
    seen = []

    def at_most_ten_held(balance):
        seen.append(balance.amount)
        if balance.amount > 10:
            raise OverTheDailyCap("This balance holds more than the cap.")

    before = ledger_state()

    with pytest.raises(OverTheDailyCap):
        post(
            [
                Leg(member.pk, TransactionType.WITHDRAWAL, Decimal("1.00")),
                Leg(pool.pk, TransactionType.DEPOSIT, Decimal("1.00"), checks=(not_frozen, at_most_ten_held)),
            ],
            Booking(None, TransactionSource.SYSTEM),
        )

    assert seen == [Decimal("100.00")]
    assert ledger_state() == before
    member.refresh_from_db()
    assert member.amount == Decimal("5.00")


def test_settle_decides_the_final_legs_from_the_locked_rows(two_balances):
    pool, _ = two_balances

    def half_of_what_is_there(locked):
        return [Leg(pool.pk, TransactionType.WITHDRAWAL, locked[pool.pk].amount / 2)]

    (entry,) = post(
        [Leg(pool.pk, TransactionType.WITHDRAWAL, Decimal("0.01"))],
        Booking(None, TransactionSource.SYSTEM),
        settle=half_of_what_is_there,
    )

    assert entry.amount == Decimal("50.00")
    pool.refresh_from_db()
    assert pool.amount == Decimal("50.00")


def test_a_plans_verdict_is_a_value():
    def refuse(found):
        raise NotFound("No such wallet balance.")

    def accept(found):
        return []

    assert isinstance(validate(refuse, {}), Refused)
    assert isinstance(validate(refuse, {}).error, NotFound)
    assert validate(accept, {}) == Valid([])
