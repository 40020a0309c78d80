"""Holds under concurrency: real threads against the real PostgreSQL and Redis.

What DESIGN.md promises of holds ("Reserved is not moved"), under races:
concurrent holds never reserve more than is available; a hold is resolved
exactly once whoever races for it (a capture, a void, the sweeper at its
expiry); withdrawals never take what holds reserve, and no refusal ever comes
from the database's CHECKs; partial captures and their refunds add up. Each
test is bounded by a count of threads and operations, judges what every
thread was told, and ends with the ledger's and the holds' invariants
(tests/invariants.py).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from uuid import UUID

import pytest

from conftest import client_for
from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.holds import active_remainders
from tests.invariants import assert_ledger_invariants, bypass_redis_locks, run_in_threads, unexpected
from transactions import services
from transactions.holds.services import Captured, Swept, hold_capture, hold_create, hold_void, holds_expire
from transactions.models import Hold, HoldStatus, Transaction, TransactionType
from wallet_project.errors import (
    CaptureExceedsHold,
    HoldExpired,
    HoldNotActive,
    InsufficientFunds,
    RefundExceedsPayment,
)
from wallets.models import WalletBalance

pytestmark = pytest.mark.django_db(transaction=True)

HOLDS_URL = "/api/v1/holds/"


def capture_entries(hold: Hold) -> list[Transaction]:
    return list(Transaction.objects.filter(type=TransactionType.CAPTURE, reference=hold.reference).order_by("sequence"))


def refresh(*objects: Any) -> None:
    for obj in objects:
        obj.refresh_from_db()


# --- 1. concurrent holds never reserve more than is available ------------------------------

HOLD_THREADS = 50
FUNDS = Decimal("100.00")


def test_concurrent_holds_beyond_what_is_available_never_reserve_more_than_it() -> None:
    user = UserFactory()
    balance = funded_balance(amount=FUNDS, wallet=WalletFactory(owner=user))
    asked = [Decimal(index % 5 + 1) for index in range(HOLD_THREADS)]  # 150.00 in all
    clients = [client_for(user) for _ in range(HOLD_THREADS)]  # one each: APIClient is not thread-safe

    def place(index: int) -> Any:
        body = {"wallet_balance_id": str(balance.pk), "amount": f"{asked[index]:.2f}", "expires_in": 3600}
        return clients[index].post(HOLDS_URL, body, format="json")

    outcomes = run_in_threads(place, HOLD_THREADS)

    assert unexpected(outcomes) == []
    responses = [o.result for o in outcomes]
    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {HTTPStatus.CREATED, HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.TOO_MANY_REQUESTS}, (
        statuses
    )
    created = [r.json() for r in responses if r.status_code == HTTPStatus.CREATED]
    refused = [r.json()["error"] for r in responses if r.status_code == HTTPStatus.UNPROCESSABLE_ENTITY]
    timed_out = [r.json()["error"] for r in responses if r.status_code == HTTPStatus.TOO_MANY_REQUESTS]
    assert {error["code"] for error in refused} <= {"insufficient_funds"}
    assert {error["code"] for error in timed_out} <= {"lock_timeout"}
    assert len(created) + len(refused) + len(timed_out) == HOLD_THREADS
    assert refused, "150.00 asked of 100.00: some holds must be refused"

    refresh(balance)
    reserved = sum(Decimal(hold["amount"]) for hold in created)
    assert balance.amount == FUNDS  # a hold moves no money
    assert balance.held_amount == reserved <= FUNDS
    # A refusal saw less available than it asked, and no less than is available now: holds only took.
    available = balance.amount - balance.held_amount
    for error in refused:
        assert available <= Decimal(error["details"]["available"]) < Decimal(error["details"]["requested"]), error
    # A lock wait that ran out (if any) left nothing behind: the holds are exactly the 201s.
    assert sorted(Hold.objects.filter(wallet_balance=balance).values_list("pk", flat=True)) == sorted(
        UUID(hold["id"]) for hold in created
    )
    assert Transaction.objects.filter(wallet_balance=balance).count() == 1  # the funding deposit only
    assert_ledger_invariants([balance.pk])


# --- 2. a capture racing a void: exactly one wins -------------------------------------------

RACE_ROUNDS = 20
HOLD_AMOUNT = Decimal("10.00")
CAPTURED_PART = Decimal("7.50")  # a final capture of less: what it released shows


def _capture_or_void(hold: Hold) -> list[Any]:
    """A final capture and a void of `hold`, in two threads released together: each one's outcome."""
    owner = hold.owner

    def resolve(index: int) -> Captured | Hold:
        if index == 0:
            return hold_capture(hold_id=hold.pk, amount=CAPTURED_PART, owner=owner, created_by=owner)
        return hold_void(hold_id=hold.pk, owner=owner, created_by=owner)

    return run_in_threads(resolve, 2)


def test_a_capture_racing_a_void_of_one_hold_resolves_it_exactly_once() -> None:
    balance = funded_balance(amount="1000.00")
    owner = balance.wallet.owner
    winners: Counter[str] = Counter()
    holds = []

    for _ in range(RACE_ROUNDS):
        hold = hold_create(wallet_balance_id=balance.pk, amount=HOLD_AMOUNT, owner=owner, created_by=owner)
        holds.append(hold)
        captured, voided = _capture_or_void(hold)

        assert unexpected([captured, voided], HoldNotActive) == []
        assert (captured.error is None) != (voided.error is None), (captured, voided)
        winner = HoldStatus.CAPTURED if captured.error is None else HoldStatus.VOIDED
        loser = voided if winner == HoldStatus.CAPTURED else captured
        assert loser.error.details == {"status": winner}
        refresh(hold)
        assert hold.status == winner
        winners[winner] += 1

    entries = Transaction.objects.filter(wallet_balance=balance, type=TransactionType.CAPTURE)
    for hold in holds:
        if hold.status == HoldStatus.CAPTURED:
            assert [entry.amount for entry in capture_entries(hold)] == [CAPTURED_PART]
            assert hold.captured_amount == CAPTURED_PART
        else:
            assert capture_entries(hold) == []
            assert hold.captured_amount == 0
    refresh(balance)
    assert entries.count() == winners[HoldStatus.CAPTURED]
    assert balance.amount == Decimal("1000.00") - CAPTURED_PART * winners[HoldStatus.CAPTURED]
    assert balance.held_amount == 0 == active_remainders(balance)  # each winner released all of its hold
    assert_ledger_invariants([balance.pk])


# --- 3. a capture racing the sweeper at the expiry: exactly one outcome --------------------

# Each capture, and a sweep beside it, starts this far from its hold's expiry: before it, on it and after it.
# The holds (of 1 s) are placed one after another in a few milliseconds: the test waits a little over a second.
EXPIRY_OFFSETS = (-0.04, -0.02, -0.01, -0.005, 0.0, 0.005, 0.01, 0.02, 0.04)


def _at(hold: Hold, offset: float) -> None:
    """Sleep until `offset` seconds from the hold's expiry (at once if that is past)."""
    time.sleep(max(0.0, hold.expires_at.timestamp() + offset - time.time()))


def test_a_capture_racing_the_sweeper_at_the_expiry_has_exactly_one_outcome() -> None:
    balances = [funded_balance(amount="100.00") for _ in EXPIRY_OFFSETS]
    # The API asks at least 60 s; the service takes any positive expiry.
    holds = [
        hold_create(
            wallet_balance_id=balance.pk,
            amount=Decimal("40.00"),
            owner=balance.wallet.owner,
            created_by=None,
            expires_in=1,
        )
        for balance in balances
    ]

    def capture_or_sweep(index: int) -> Captured | Swept:
        hold, offset = holds[index // 2], EXPIRY_OFFSETS[index // 2]
        _at(hold, offset)
        if index % 2 == 0:
            return hold_capture(hold_id=hold.pk, amount=None, owner=hold.owner, created_by=None)
        return holds_expire()

    outcomes = run_in_threads(capture_or_sweep, 2 * len(holds))
    captures, sweeps = outcomes[0::2], outcomes[1::2]

    assert unexpected(captures, HoldExpired) == []
    assert unexpected(sweeps) == []
    # Once every hold is past its expiry, what the races left active (a refused capture rolls back the
    # release it started with) is swept.
    _at(max(holds, key=lambda hold: hold.expires_at), 0.05)
    swept_after = holds_expire().holds

    for hold, capture in zip(holds, captures, strict=True):
        refresh(hold)
        entries = capture_entries(hold)
        if capture.error is None:
            assert hold.status == HoldStatus.CAPTURED, hold
            assert hold.captured_amount == hold.amount
            assert [entry.amount for entry in entries] == [hold.amount]
            assert capture.result.entry.pk == entries[0].pk
        else:
            assert capture.error.details["status"] == HoldStatus.EXPIRED
            assert hold.status == HoldStatus.EXPIRED, hold
            assert hold.resolved_at == hold.expires_at  # released as of the moment it stopped reserving
            assert hold.captured_amount == 0
            assert entries == []
    for balance, hold in zip(balances, holds, strict=True):
        refresh(balance)
        assert balance.held_amount == 0 == active_remainders(balance)
        assert balance.amount == Decimal("100.00") - hold.captured_amount
        assert balance.hold_due_at is None  # the last sweep went over every balance with a hold due

    # Each expired hold was counted once, by the sweep that released it.
    expired = sum(hold.status == HoldStatus.EXPIRED for hold in holds)
    assert sum(sweep.result.holds for sweep in sweeps) + swept_after == expired
    assert_ledger_invariants([balance.pk for balance in balances])


# --- 4. withdrawals racing holds and captures never take what is held ----------------------

MIX_THREADS = 8
MIX_OPERATIONS = 15
MIX_FUNDS = Decimal("300.00")


@dataclass
class Ledger:
    """What one thread was told: its withdrawals, its captures, its holds; and its refusals."""

    withdrawn: Decimal = Decimal(0)
    captured: Decimal = Decimal(0)
    holds: list[Hold] = field(default_factory=list)
    refusals: list[InsufficientFunds] = field(default_factory=list)


def _cents(rng: random.Random, ceiling: int) -> Decimal:
    return Decimal(rng.randint(1, ceiling * 100)) / 100


def _mix(balance: WalletBalance, seed: int) -> Ledger:
    """Withdraw, place holds, capture (partly or finally) and void this thread's own holds, at random."""
    rng = random.Random(seed)
    owner = balance.wallet.owner
    told = Ledger()
    for _ in range(MIX_OPERATIONS):
        active = [hold for hold in told.holds if hold.status == HoldStatus.ACTIVE]
        kind = rng.choice(["withdraw", "hold", "hold"] + (["capture", "void"] if active else []))
        try:
            if kind == "withdraw":
                amount = _cents(rng, 40)
                services.withdrawal_create(wallet_balance_id=balance.pk, amount=amount, owner=owner, created_by=owner)
                told.withdrawn += amount
            elif kind == "hold":
                told.holds.append(
                    hold_create(wallet_balance_id=balance.pk, amount=_cents(rng, 40), owner=owner, created_by=owner)
                )
            elif kind == "capture":
                hold = rng.choice(active)
                part = min(hold.amount - hold.captured_amount, _cents(rng, 20))
                captured = hold_capture(
                    hold_id=hold.pk, amount=part, final=rng.random() < 0.5, owner=owner, created_by=owner
                )
                told.holds[told.holds.index(hold)] = captured.hold
                told.captured += part
            else:
                hold = rng.choice(active)
                told.holds[told.holds.index(hold)] = hold_void(hold_id=hold.pk, owner=owner, created_by=owner)
        except InsufficientFunds as exc:  # only withdrawals and new holds may be refused, and only for this
            told.refusals.append(exc)
    return told


@pytest.mark.parametrize("redis_locks", [True, False], ids=["redis-and-row-locks", "row-locks-only"])
def test_withdrawals_racing_holds_and_captures_never_take_what_is_held(
    redis_locks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the Redis locks, the row lock alone must keep the reservations and the debits apart.
    if not redis_locks:
        bypass_redis_locks(monkeypatch)
    balance = funded_balance(amount=MIX_FUNDS)

    outcomes = run_in_threads(lambda index: _mix(balance, 2000 + index), MIX_THREADS)

    # No IntegrityError (a CHECK of the balance or the hold refusing what the engine let through), no other error.
    assert unexpected(outcomes) == []
    told = [outcome.result for outcome in outcomes]
    refusals = [exc for ledger in told for exc in ledger.refusals]
    assert refusals, "the mix asks more than the balance has: some of it must be refused"
    for exc in refusals:
        assert Decimal(exc.details["available"]) < Decimal(exc.details["requested"]), exc.details

    # What the threads were told, replayed on paper, is what the database holds.
    refresh(balance)
    withdrawn = sum(ledger.withdrawn for ledger in told)
    captured = sum(ledger.captured for ledger in told)
    holds = {hold.pk: hold for ledger in told for hold in ledger.holds}
    still_held = sum(hold.amount - hold.captured_amount for hold in holds.values() if hold.status == HoldStatus.ACTIVE)
    assert balance.amount == MIX_FUNDS - withdrawn - captured
    assert balance.held_amount == still_held <= balance.amount
    stored = Hold.objects.filter(wallet_balance=balance).in_bulk()
    assert set(stored) == set(holds)
    for pk, hold in holds.items():
        assert (stored[pk].status, stored[pk].captured_amount) == (hold.status, hold.captured_amount)
    assert_ledger_invariants([balance.pk])


# --- 5. partial captures from several threads add up ---------------------------------------

CAPTURE_THREADS = 10
CAPTURES_EACH = 4
PARTS = [Decimal("1.00"), Decimal("2.50"), Decimal("3.75"), Decimal("5.00")]


def _check_inside(captured: Captured) -> None:
    """Inside each capture's transaction, under its locks: the hold and its balance agree."""
    hold = captured.hold
    balance = WalletBalance.objects.get(pk=hold.wallet_balance_id)
    booked = sum(entry.amount for entry in capture_entries(hold))
    assert hold.captured_amount == booked <= hold.amount
    left = hold.amount - hold.captured_amount if hold.status == HoldStatus.ACTIVE else Decimal(0)
    assert balance.held_amount == left  # the hold is its balance's only one


def test_partial_captures_of_one_hold_from_several_threads_add_up() -> None:
    balance = funded_balance(amount="100.00")
    owner = balance.wallet.owner
    hold = hold_create(wallet_balance_id=balance.pk, amount=Decimal("100.00"), owner=owner, created_by=owner)

    def capture_parts(index: int) -> list[Decimal | Exception]:
        rng = random.Random(3000 + index)
        told: list[Decimal | Exception] = []
        for _ in range(CAPTURES_EACH):
            part = rng.choice(PARTS)
            try:
                hold_capture(
                    hold_id=hold.pk, amount=part, final=False, owner=owner, created_by=owner, on_captured=_check_inside
                )
                told.append(part)
            except (CaptureExceedsHold, HoldNotActive) as exc:
                told.append(exc)
        return told

    outcomes = run_in_threads(capture_parts, CAPTURE_THREADS)

    assert unexpected(outcomes) == []
    told = [item for outcome in outcomes for item in outcome.result]
    parts = [item for item in told if isinstance(item, Decimal)]
    refused = [item for item in told if isinstance(item, Exception)]
    assert len(parts) + len(refused) == CAPTURE_THREADS * CAPTURES_EACH
    refresh(hold, balance)
    assert hold.captured_amount == sum(parts) <= hold.amount
    assert sorted(entry.amount for entry in capture_entries(hold)) == sorted(parts)
    for exc in refused:
        if isinstance(exc, CaptureExceedsHold):
            assert Decimal(exc.details["remaining"]) < Decimal(exc.details["requested"])
        else:  # only a hold captured in full is resolved by a capture that is not final
            assert exc.details == {"status": HoldStatus.CAPTURED}
            assert hold.status == HoldStatus.CAPTURED
    if hold.status == HoldStatus.ACTIVE:
        assert hold.remaining + hold.captured_amount == hold.amount
        assert balance.held_amount == hold.remaining
        hold_capture(hold_id=hold.pk, amount=None, owner=owner, created_by=owner)  # the rest, final
        refresh(hold, balance)
    assert hold.status == HoldStatus.CAPTURED
    assert hold.captured_amount == hold.amount == sum(entry.amount for entry in capture_entries(hold))
    assert balance.amount == 0 == balance.held_amount
    assert_ledger_invariants([balance.pk])


# --- 6. refunds of a hold's captures never give back more than was captured ----------------

REFUND_THREADS = 12


def test_concurrent_refunds_of_a_holds_captures_give_back_what_was_captured_once() -> None:
    balance = funded_balance(amount="100.00")
    owner = balance.wallet.owner
    hold = hold_create(wallet_balance_id=balance.pk, amount=Decimal("100.00"), owner=owner, created_by=owner)
    captures = [
        hold_capture(hold_id=hold.pk, amount=Decimal(part), final=False, owner=owner, created_by=owner).entry
        for part in ("30.00", "30.00", "40.00")
    ]
    refresh(hold, balance)
    assert hold.status == HoldStatus.CAPTURED and balance.amount == 0

    outcomes = run_in_threads(
        lambda index: services.refund_create(payment_id=captures[index % 3].pk, amount=None, created_by=None),
        REFUND_THREADS,
    )

    assert unexpected(outcomes, RefundExceedsPayment) == []
    refunds = [outcome.result for outcome in outcomes if outcome.error is None]
    for index, outcome in enumerate(outcomes):  # each in full of its capture, or what was left of the hold's
        if outcome.error is None:
            assert outcome.result.amount <= captures[index % 3].amount
    assert sum(refund.amount for refund in refunds) == hold.captured_amount
    assert {refund.reference for refund in refunds} == {hold.reference}
    refresh(balance)
    assert balance.amount == Decimal("100.00")
    assert Transaction.objects.filter(type=TransactionType.REFUND).count() == len(refunds)
    assert_ledger_invariants([balance.pk])
