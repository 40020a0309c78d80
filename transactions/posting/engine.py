"""The posting engine: the one road of every money movement (DESIGN.md, "One road for money").

It knows no movement by name. A movement is data (`movement`): its steps,
each a leg (balance, entry type, amount, counterpart, rate) or a reservation
(a hold's amount reserved on a balance, or released), with the checks the
balance must pass under the lock, and a `Booking` (who asks, from where,
what the entries say, the hook inside the transaction). `post` runs the road:

1. the Redis locks of every balance, in sorted id order, within one deadline
   (`wallets.locks.balance_locks`), after the step a caller put before them
   (`before_locks`: the fast path's throttle count, in the same round trip);
2. `transaction.atomic(durable=True)`, and the same balances read
   `FOR NO KEY UPDATE` in the same order, with the actor's state and, for a
   converted movement, the current rate, in one statement: the row lock is
   the fence if a Redis lock ever expires under a slow worker;
3. the holds of those balances that are past their expiry released, when a
   balance says one may be (`hold_due`; a balance with none due costs
   nothing), so that no rule reads money an expired hold no longer reserves;
4. the checks, in the order the answers must come: the actor is active, the
   balances exist, the facts the legs were validated from still hold
   (`_ensure_rows`), each step's own checks, then `settle` (rules that need
   the locked rows: what is left of a payment or a hold, the rate now);
5. the balances and the ledger entries, each computed from the locked row:
   never below zero nor above the largest amount, and no debit or new hold
   beyond what is available (the amount less what holds reserve) (`_entries`),
   written in one round trip (`rows.write`, with the booking's `rider` in the
   entries' INSERT), then `on_posted`;
6. commit, release, and the audit line. With read replicas, the release also
   marks the actor as having just written (`recent_writes.WriteMark`, armed
   by the commit), in the same script: their next reads go to the primary.

`post_parts` runs the same road for several movements at once (a batch): each
a `Part` (its steps and its `settle`), checked, settled and moved in order on
the locked rows as the parts before it left them, so each sees the balances
as it would have one movement after the other; every balance is locked once
and written once (its final amount and last sequence) with one entry per leg,
and a part's refusal says which part it was (`PartsRefused`). A single
movement is the posting of one part.

`planning.plan_and_post` (`plan_and_post_parts`) puts validation in front of
it. Adding a movement means a service that builds its plan or steps, an entry
type, and a migration for the database's CHECKs: nothing here changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from django.db import connection, transaction

from transactions.models import CREDIT_TYPES, Transaction
from transactions.posting import facts, hooks, rows
from transactions.posting.facts import BalanceFacts
from transactions.posting.movement import Booking, Leg, Part, PartsRefused, Reserve, Settle, Step
from transactions.posting.rows import BalanceRow
from wallet_project.errors import (
    DomainError,
    InactiveAccount,
    InsufficientFunds,
    InvalidInput,
    NotFound,
)
from wallet_project.ids import uuid7
from wallet_project.money import EXACT, MAX_BALANCE, format_amount
from wallet_project.replicas.recent_writes import mark_for
from wallets.locks import Gate, balance_locks

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

    from accounts.models import User

# --- the step before the locks ----------------------------------------------------------------

_gate: ContextVar[Gate | None] = ContextVar("posting_gate", default=None)


@contextmanager
def before_locks(gate: Gate | None) -> Iterator[None]:
    """Have the postings inside this block pass `gate` to the first acquire of their locks.

    The gate (the fast path's throttle count) is settled by Redis in the same
    round trip as the locks, before them; over its limit, no lock is taken and
    its refusal is raised. It stays with the request, not in every service's
    signature.
    """
    token = _gate.set(gate)
    try:
        yield
    finally:
        _gate.reset(token)


# --- the road ---------------------------------------------------------------------------------


class _FactsChanged(Exception):
    """Under the lock, a balance no longer shows the facts its movement was validated from.

    An exception, because it must leave the atomic block to roll it back; it
    never leaves `_post`.
    """


def post(
    legs: Sequence[Step],
    booking: Booking,
    *,
    settle: Settle | None = None,
    with_rate: bool = False,
    create_balance: Callable[[], object] | None = None,
) -> list[Transaction]:
    """Lock, check, write and commit the steps of one movement; returns the entries of its legs, in order.

    `settle`, if given, runs on the locked rows and returns the final legs; with
    `with_rate` those rows carry the current rate between their currencies.
    `create_balance`, if given, inserts the (locked) balance of an opening
    deposit in the same database transaction, so a refused opening leaves no
    balance behind. Raises InactiveAccount, NotFound, WalletFrozen (and what
    the legs' checks and `settle` raise), InsufficientFunds, InvalidInput (a
    balance beyond its largest amount), LockTimeout, ServiceUnavailable, and
    the gate's refusal.
    """
    entries = _post((Part(legs, settle),), booking, with_rate=with_rate, create_balance=create_balance)
    assert entries is not None  # only known facts can change
    return entries


def post_if_facts_hold(
    legs: Sequence[Step], booking: Booking, validated: Mapping[UUID, BalanceFacts]
) -> list[Transaction] | None:
    """`post` legs validated from the known facts `validated`; None, with nothing written, if the locked rows no
    longer show them (a fresh read must decide)."""
    return _post((Part(legs),), booking, validated=validated)


def post_parts(
    parts: Sequence[Part],
    booking: Booking,
    *,
    with_rate: bool = False,
    validated: Mapping[UUID, BalanceFacts] | None = None,
) -> list[Transaction] | None:
    """`post` several movements as one: one transaction, every balance locked once; all of them or nothing.

    Each part is checked, settled and moved in order on the locked rows as the
    parts before it left them; a balance that several parts move is written once,
    with one entry per leg, chained in order. The entries of every part, in order.
    A part's refusal is raised as `PartsRefused` (which part, and its DomainError);
    the other refusals (InactiveAccount, NotFound, LockTimeout, ServiceUnavailable,
    the gate's) as `post` raises them. With `validated` (the known facts the parts
    were planned from), None when the locked rows no longer show them.
    """
    return _post(parts, booking, with_rate=with_rate, validated=validated, indexed=True)


def _post(
    parts: Sequence[Part],
    booking: Booking,
    *,
    with_rate: bool = False,
    create_balance: Callable[[], object] | None = None,
    validated: Mapping[UUID, BalanceFacts] | None = None,
    indexed: bool = False,
) -> list[Transaction] | None:
    """`post_parts`; without `indexed` (one movement), its refusals are raised as they are. With `validated`,
    the known facts the parts came from: None if the locked rows no longer show them (nothing was written)."""
    reference = booking.reference or uuid7()
    balance_ids = sorted({step.balance_id for part in parts for step in part.steps})
    # One cursor for the locked read and the writes, made before the locks are taken and read again
    # after they are released: what the locks hold is the rhythm of a busy balance
    # (docs/PERFORMANCE.md, "One cursor, made before the locks").
    mark = mark_for(booking.created_by)  # None without read replicas
    with connection.cursor() as cursor:
        try:
            with balance_locks(balance_ids, _gate.get(), mark), transaction.atomic(durable=True):
                if mark is not None:
                    transaction.on_commit(mark.arm)
                if create_balance is not None:
                    create_balance()
                locked = _read_locked(balance_ids, booking.created_by, with_rate, cursor)
                if create_balance is None:  # an opening's own new row is not a fact until the commit
                    facts.remember(locked.values())
                due = [balance for balance in locked.values() if balance.hold_due]
                released = hooks.holds_expired(rows.release_expired_holds(due, cursor)) if due else []
                _ensure_rows(locked, balance_ids, booking.created_by, validated)
                entries = _moved_parts(locked, parts, booking, reference, indexed)
                if booking.tells is not None:  # what its settle decided to tell, with its movement's events
                    released = [*released, *booking.tells()]
                rows.write([locked[balance_id] for balance_id in balance_ids], entries, cursor, released, booking.rider)
                if booking.on_posted is not None:
                    rows.read_created_at(cursor, entries, booking.rider)
                    booking.on_posted(entries)
        except _FactsChanged:
            return None
        if booking.on_posted is None:
            rows.read_created_at(cursor, entries, booking.rider)
    # Committed and released: the audit line is written outside the locks, so
    # that the next movement of these balances does not wait for it.
    hooks.audit(entries, reference)
    return entries


def _read_locked(
    balance_ids: Sequence[UUID], actor: User | None, with_rate: bool, cursor: CursorWrapper
) -> dict[UUID, BalanceRow]:
    # Same order as the Redis locks: no deadlock between A→B and B→A.
    return rows.read_balances(balance_ids, lock=True, actor=actor, with_rate=with_rate, cursor=cursor)


def _ensure_rows(
    locked: Mapping[UUID, BalanceRow],
    balance_ids: Sequence[UUID],
    actor: User | None,
    validated: Mapping[UUID, BalanceFacts] | None,
) -> None:
    """What every part needs of the locked rows, in the order of the answers a fresh read gives."""
    ensure_actor_active(locked, actor)
    if len(locked) != len(balance_ids):  # it vanished between the look-up and the lock
        raise NotFound("No such wallet balance.")
    if validated is not None and not facts.hold(locked, validated):
        raise _FactsChanged()


def _moved_parts(
    locked: Mapping[UUID, BalanceRow], parts: Sequence[Part], booking: Booking, reference: UUID, indexed: bool
) -> list[Transaction]:
    """Each part in order: its steps' checks, its `settle`, then its balances moved (the locked rows, in place);
    the entries of all. With `indexed`, a part's refusal is raised as PartsRefused."""
    entries: list[Transaction] = []
    for index, part in enumerate(parts):
        try:
            for step in part.steps:
                for check in step.checks:
                    check(locked[step.balance_id])
            steps = part.steps if part.settle is None else part.settle(locked)
            _entries(locked, steps, booking, reference, entries)
        except DomainError as exc:
            if not indexed:
                raise
            raise PartsRefused([(index, exc)]) from exc
    return entries


def ensure_actor_active(balances: Mapping[UUID, BalanceRow], actor: User | None) -> None:
    """Refuse a movement asked by a deactivated (or deleted) user, as read with its balances (InactiveAccount)."""
    if actor is not None and balances and not next(iter(balances.values())).actor_is_active:
        raise InactiveAccount()


def _entries(
    locked: Mapping[UUID, BalanceRow],
    steps: Sequence[Step],
    booking: Booking,
    reference: UUID,
    entries: list[Transaction],
) -> None:
    """Move each step's balance (the locked row, updated in place) and add each leg's ledger entry to `entries`."""
    for leg in steps:
        balance = locked[leg.balance_id]
        if isinstance(leg, Reserve):
            _reserve(balance, leg)
            continue
        balance.amount = _moved(balance, leg)
        balance.last_sequence += 1
        entries.append(
            rows.new_entry(
                wallet_balance_id=balance.pk,
                wallet_id=balance.wallet_id,
                owner_id=balance.owner_id,
                currency_id=balance.currency_id,
                type=leg.type,
                amount=leg.amount,
                balance_after=balance.amount,
                sequence=balance.last_sequence,
                related_wallet_balance_id=leg.related_balance_id,
                exchange_rate=leg.exchange_rate,
                reference=leg.reference or reference,
                source=booking.source,
                description=booking.description if leg.description is None else leg.description,
                merchant=booking.merchant if leg.merchant is None else leg.merchant,
                created_by=booking.created_by,
            )
        )


def _moved(balance: BalanceRow, leg: Leg) -> Decimal:
    """The balance after the leg, from the locked row, never from a value read before the lock.

    Raises InsufficientFunds for a debit beyond what is available (the balance less what its holds
    reserve), InvalidInput for a credit beyond the largest amount the column holds.
    """
    if leg.type in CREDIT_TYPES:
        new_amount = EXACT.add(balance.amount, leg.amount)
        if new_amount > MAX_BALANCE:
            message = "The balance would exceed the largest amount it can hold."
            raise InvalidInput(message, details={"amount": [message]})
        return new_amount
    new_amount = EXACT.subtract(balance.amount, leg.amount)
    if new_amount < balance.held_amount:
        raise _insufficient(balance, leg.amount)
    return new_amount


def _reserve(balance: BalanceRow, step: Reserve) -> None:
    """Reserve (or release) part of the locked balance for a hold; a new reservation must fit in what is
    available, and the balance's next due time is at most its expiry (InsufficientFunds)."""
    held = EXACT.add(balance.held_amount, step.amount)
    if step.amount > 0 and held > balance.amount:
        raise _insufficient(balance, step.amount)
    balance.held_amount = held
    if step.until is not None and (balance.hold_due_at is None or step.until < balance.hold_due_at):
        balance.hold_due_at = step.until


def _insufficient(balance: BalanceRow, asked: Decimal) -> InsufficientFunds:
    def text(amount: Decimal) -> str:
        return f"{format_amount(amount, balance.minor_unit)} {balance.currency_id}"

    held = f", {text(balance.held_amount)} of it held ({text(balance.available)} available)"
    return InsufficientFunds(
        f"Balance {balance.pk} holds {text(balance.amount)}{held if balance.held_amount else ''}; "
        f"{text(asked)} was asked.",
        details={
            "wallet_balance_id": str(balance.pk),
            "available": format_amount(balance.available, balance.minor_unit),
            "requested": format_amount(asked, balance.minor_unit),
            "currency": balance.currency_id,
        },
    )
