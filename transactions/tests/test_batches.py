"""Batches through the service (`transactions.batches.services.batch_create`) and the engine's parts.

What the API tests do not reach: the same rules as the single endpoints
(frozen wallets, someone else's frozen destination, a deactivated caller,
step-up on the batch's outflows together), the order of the answers when
several movements are refused, a balance moved many times in one posting, and
the engine's `post_parts` on its own.
"""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus
from typing import Any

import pytest

from conftest import client_for, error_code
from events.models import Event
from tests.factories import WalletFactory, funded_balance
from tests.invariants import assert_ledger_invariants
from tests.second_factor import bearer_client, enrolled, logged_in_with_code
from transactions.batches.services import batch_create
from transactions.models import Transaction, TransactionSource, TransactionType
from transactions.posting import facts
from transactions.posting.engine import post_parts
from transactions.posting.movement import Booking, Leg, Part, PartsRefused
from wallet_project.errors import (
    InactiveAccount,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    SameBalance,
    WalletFrozen,
)
from wallets.models import Wallet, WalletBalance
from wallets.services import wallet_set_frozen

pytestmark = pytest.mark.django_db

URL = "/api/v1/transactions/batch/"


def trace() -> tuple:
    return (
        Transaction.objects.count(),
        Event.objects.count(),
        tuple(WalletBalance.objects.order_by("pk").values_list("pk", "amount", "last_sequence")),
    )


def transfer(source: WalletBalance, destination: WalletBalance, amount: str) -> dict[str, Any]:
    return {
        "type": "transfer",
        "from_wallet_balance_id": source.pk,
        "to_wallet_balance_id": destination.pk,
        "amount": Decimal(amount),
    }


def one(kind: str, balance: WalletBalance, amount: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "wallet_balance_id": balance.pk, "amount": Decimal(amount), **fields}


@pytest.fixture
def mine(user):
    return funded_balance(amount="100.00", wallet=WalletFactory(owner=user))


@pytest.fixture
def spare(user):
    return funded_balance(amount="0", wallet=WalletFactory(owner=user))


@pytest.fixture
def theirs(other_user):
    return funded_balance(amount="0", wallet=WalletFactory(owner=other_user))


def test_a_balance_moved_many_times_gets_one_chained_entry_per_movement_in_order(user, mine, spare):
    movements = []
    for k in range(60):
        movements.append(one("withdraw", mine, "1.50") if k % 3 else one("deposit", mine, "2.00"))
        movements.append(transfer(mine, spare, "0.25"))

    batch = batch_create(movements=movements, owner=user, created_by=user)

    entries = list(Transaction.objects.filter(wallet_balance=mine).order_by("sequence"))[1:]  # after the opening
    assert [entry.sequence for entry in entries] == list(range(2, 122))
    assert [entry.reference for entry in entries] == [entry.reference for entry in batch.entries]
    running = Decimal("100.00")
    for movement, entry in zip(movements, entries, strict=True):
        running += movement["amount"] if movement["type"] == "deposit" else -movement["amount"]
        assert entry.balance_after == running
    mine.refresh_from_db()
    spare.refresh_from_db()
    assert mine.amount == running == Decimal("100.00") + 20 * 2 - 40 * Decimal("1.50") - 60 * Decimal("0.25")
    assert (spare.amount, spare.last_sequence) == (Decimal("15.00"), 60)
    assert_ledger_invariants([mine.pk, spare.pk])


def test_a_frozen_wallet_in_the_middle_refuses_the_whole_batch(user, mine, spare):
    wallet_set_frozen(wallet_id=spare.wallet_id, frozen=True)
    before = trace()

    with pytest.raises(WalletFrozen) as refused:
        batch_create(
            movements=[one("deposit", mine, "1.00"), transfer(mine, spare, "1.00"), one("deposit", mine, "1.00")],
            owner=user,
            created_by=user,
        )

    assert refused.value.details["index"] == 1
    assert str(spare.wallet_id) in refused.value.message  # the caller's own wallet: it may say which
    assert trace() == before


def test_someone_elses_frozen_destination_is_refused_without_naming_it(user, mine, theirs):
    wallet_set_frozen(wallet_id=theirs.wallet_id, frozen=True)

    with pytest.raises(WalletFrozen) as refused:
        batch_create(movements=[transfer(mine, theirs, "1.00")], owner=user, created_by=user)

    assert refused.value.details == {"index": 0}
    assert str(theirs.wallet_id) not in refused.value.message


def test_a_refusal_is_the_first_in_the_contracts_order_of_checks(user, mine, spare, theirs):
    unaffordable = one("withdraw", mine, "500.00")
    same = transfer(mine, mine, "1.00")
    not_mine = one("withdraw", theirs, "1.00")
    too_precise = one("deposit", spare, "0.001")

    with pytest.raises(SameBalance) as first_rule:
        batch_create(movements=[one("deposit", spare, "1"), same, unaffordable], owner=user, created_by=user)
    with pytest.raises(NotFound) as not_found:
        batch_create(movements=[same, not_mine, unaffordable], owner=user, created_by=user)
    with pytest.raises(InvalidInput) as invalid:
        batch_create(movements=[same, not_mine, too_precise, too_precise], owner=user, created_by=user)
    with pytest.raises(InsufficientFunds) as under_the_lock:
        batch_create(movements=[one("deposit", spare, "1"), unaffordable], owner=user, created_by=user)

    assert first_rule.value.details == {"index": 1}
    assert not_found.value.details == {"index": 1}
    assert set(invalid.value.details["movements"]) == {"2", "3"}
    assert invalid.value.details["movements"]["2"]["amount"]
    assert under_the_lock.value.details["index"] == 1
    assert Transaction.objects.filter(wallet_balance=spare).count() == 0


def test_a_deactivated_caller_books_nothing(user, mine, spare):
    user.is_active = False
    user.save(update_fields=["is_active"])

    with pytest.raises(InactiveAccount):
        batch_create(movements=[transfer(mine, spare, "1.00")], owner=None, created_by=user)

    assert Transaction.objects.filter(wallet_balance=spare).count() == 0


def test_a_batch_needs_between_one_and_a_thousand_movements(user, mine):
    with pytest.raises(InvalidInput):
        batch_create(movements=[], owner=user, created_by=user)
    with pytest.raises(InvalidInput):
        batch_create(movements=[one("deposit", mine, "1")] * 1_001, owner=user, created_by=user)


def test_the_batchs_answer_is_each_movements_own_entry_and_the_hook_gets_it_in_the_transaction(user, mine, theirs):
    seen = []

    batch = batch_create(
        movements=[transfer(mine, theirs, "3.00"), one("payment", mine, "2.00", merchant="Kiosk")],
        owner=user,
        created_by=user,
        source=TransactionSource.ADMIN,
        description="Two at once",
        on_booked=lambda booked: seen.append((booked.id, [entry.pk for entry in booked.entries])),
    )

    assert seen == [(batch.id, [entry.pk for entry in batch.entries])]
    out, payment = batch.entries
    assert (out.type, out.wallet_balance_id, out.amount) == (TransactionType.TRANSFER_OUT, mine.pk, Decimal("3.00"))
    assert (payment.type, payment.merchant, payment.description) == (TransactionType.PAYMENT, "Kiosk", "Two at once")
    assert {entry.source for entry in Transaction.objects.filter(reference__in=[out.reference, payment.reference])} == {
        TransactionSource.ADMIN
    }


# --- step-up: the batch's outflows together ---------------------------------------------------


@pytest.fixture
def step_up(settings):
    settings.MFA_STEP_UP_AMOUNT = Decimal("100")
    settings.MFA_STEP_UP_CURRENCY = "USD"
    settings.MFA_STEP_UP_MAX_AGE = 600


def as_json(movements: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch's body as a client sends it: ids and amounts as text."""
    return {"movements": [{key: str(value) for key, value in movement.items()} for movement in movements]}


def _dollars(user, amount="1000.00"):
    return funded_balance(amount=amount, wallet=WalletFactory(owner=user))


def test_a_large_movement_split_in_a_batch_still_needs_a_second_factor(user, theirs, step_up):
    source = _dollars(user)
    body = as_json([transfer(source, theirs, "60.00"), transfer(source, theirs, "60.00")])
    before = trace()

    refused = client_for(user).post(URL, body, format="json")
    allowed = bearer_client(logged_in_with_code(user, enrolled(user))["access"]).post(URL, body, format="json")

    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert error_code(refused) == "mfa_required"
    assert allowed.status_code == HTTPStatus.CREATED, allowed.json()
    assert Transaction.objects.count() == before[0] + 4


def test_a_batch_within_the_step_up_amount_or_between_ones_own_balances_needs_no_second_factor(
    user, theirs, spare, step_up
):
    source = _dollars(user)
    to_others = [transfer(source, theirs, "50.00"), one("withdraw", source, "50.00")]
    own = [transfer(source, spare, "400.00"), one("deposit", source, "900.00")]
    client = client_for(user)

    for movements in (to_others, own):
        response = client.post(URL, as_json(movements), format="json")
        assert response.status_code == HTTPStatus.CREATED, response.json()


# --- the engine's parts on their own -----------------------------------------------------------


def test_each_part_sees_the_balances_as_the_parts_before_it_left_them_and_a_refusal_names_its_part(mine, spare):
    seen = []

    def records(balance):
        seen.append(balance.amount)

    booking = Booking(None, TransactionSource.SYSTEM, "Parts")
    parts = [
        Part([Leg(mine.pk, TransactionType.WITHDRAWAL, Decimal("60.00"))]),
        Part([Leg(mine.pk, TransactionType.WITHDRAWAL, Decimal("30.00"), checks=(records,))]),
        Part([Leg(mine.pk, TransactionType.WITHDRAWAL, Decimal("20.00"), checks=(records,))]),
        Part([Leg(spare.pk, TransactionType.DEPOSIT, Decimal("1.00"))]),
    ]
    before = trace()

    with pytest.raises(PartsRefused) as refused:
        post_parts(parts, booking)

    assert seen == [Decimal("40.00"), Decimal("10.00")]
    ((index, error),) = refused.value.refusals
    assert (index, type(error)) == (2, InsufficientFunds)
    assert error.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert trace() == before

    entries = post_parts(parts[:2] + parts[3:], booking)

    assert [(entry.type, entry.balance_after) for entry in entries] == [
        (TransactionType.WITHDRAWAL, Decimal("40.00")),
        (TransactionType.WITHDRAWAL, Decimal("10.00")),
        (TransactionType.DEPOSIT, Decimal("1.00")),
    ]
    assert len({entry.reference for entry in entries}) == 1  # the posting's, as no leg carries its own
    assert_ledger_invariants([mine.pk, spare.pk])


# --- validated from the known facts -------------------------------------------------------------


def test_a_batch_from_known_facts_that_no_longer_hold_is_decided_by_a_fresh_read(user, other_user, mine, spare):
    movements = [one("deposit", spare, "1.00"), transfer(mine, spare, "1.00")]
    batch_create(movements=movements, owner=user, created_by=user)
    assert mine.pk in facts.kept and spare.pk in facts.kept
    Wallet.objects.filter(pk=mine.wallet_id).update(owner=other_user)
    before = trace()

    with pytest.raises(NotFound) as refused:
        batch_create(movements=movements, owner=user, created_by=user)

    assert refused.value.details == {"index": 1}
    assert trace() == before
    assert facts.kept[mine.pk].owner_id == other_user.pk  # the locked read learnt the new facts
    batch_create(movements=[transfer(mine, spare, "1.00")], owner=other_user, created_by=other_user)
    assert trace() != before
