"""Validation in front of the road: a movement's `Plan` turns its balances into legs, or refuses.

The balances are read afresh before the locks, or taken from what this
process knows of them (`facts`, one statement and one round trip fewer).
A plan's refusal is a value here (`Valid` or `Refused`), caught in one
place (`validate`); a refusal is never decided from the known facts.

A request may put a `Guard` in front of its postings (`guarded_by`): it is
shown what each planned movement takes out of its owner's hands
(`outflows`) and may refuse it, as a plan does, before any lock is taken.
The API's step-up for large movements is one (mfa/step_up.py). Several
movements planned to be posted as one (`plan_and_post_parts`, a batch) are
judged by their outflows together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from transactions.models import CREDIT_TYPES, Transaction
from transactions.posting import facts
from transactions.posting.engine import ensure_actor_active, post, post_if_facts_hold, post_parts
from transactions.posting.facts import BalanceFacts
from transactions.posting.movement import Booking, Leg, Part, PartsRefused, Reserve, Step
from transactions.posting.rows import BalanceRow, read_balances
from wallet_project.errors import DomainError, LockTimeout, NotFound, ServiceUnavailable

if TYPE_CHECKING:
    from accounts.models import User

# Turns the balances, as read afresh (BalanceRow) or as known (BalanceFacts), into the movement's steps;
# raises the refusal.
Plan = Callable[[Mapping[UUID, BalanceRow | BalanceFacts]], Sequence[Step]]


@dataclass(frozen=True, slots=True)
class Outflow:
    """Money a movement takes out of its owner's hands, in the currency of the balance it leaves."""

    amount: Decimal
    currency_id: str


# Judges a movement by its outflows before the locks; raises the refusal (a DomainError).
Guard = Callable[[Sequence[Outflow]], None]

_guard: ContextVar[Guard | None] = ContextVar("posting_guard", default=None)


@contextmanager
def guarded_by(guard: Guard | None) -> Iterator[None]:
    """Have the movements planned inside this block judged by `guard` too, after their plan and before any lock.

    It stays with the request (as `engine.before_locks` does), not in every service's signature; movements
    posted without a plan (refunds, captures, voids) and those outside the block are not judged.
    """
    token = _guard.set(guard)
    try:
        yield
    finally:
        _guard.reset(token)


def outflows(steps: Sequence[Step], found: Mapping[UUID, BalanceRow | BalanceFacts]) -> list[Outflow]:
    """What the steps take out of their balances' owners' hands: a debit that leaves for the outside world
    (a withdrawal, a payment) or for another owner's balance, and a new reservation (a hold). A credit, a
    transfer between two balances of one owner and a release take nothing."""
    taken = []
    for step in steps:
        balance = found[step.balance_id]
        if isinstance(step, Reserve):
            if step.amount > 0:
                taken.append(Outflow(step.amount, balance.currency_id))
            continue
        if step.type in CREDIT_TYPES:
            continue
        counterpart = found.get(step.related_balance_id) if step.related_balance_id is not None else None
        if counterpart is None or counterpart.owner_id != balance.owner_id:
            taken.append(Outflow(step.amount, balance.currency_id))
    return taken


@dataclass(frozen=True, slots=True)
class Valid:
    legs: Sequence[Step]


@dataclass(frozen=True, slots=True)
class Refused:
    error: DomainError


def visible_balance(
    found: Mapping[UUID, BalanceRow | BalanceFacts], balance_id: UUID, owner: User | None
) -> BalanceRow | BalanceFacts:
    """The balance, if `owner` is None (staff and system) or owns it and is active; else NotFound."""
    balance = found.get(balance_id)
    if balance is None or not (owner is None or (balance.owner_id == owner.pk and balance.owner_is_active)):
        raise NotFound("No such wallet balance.")
    return balance


def validate(plan: Plan, found: Mapping[UUID, BalanceRow | BalanceFacts]) -> Valid | Refused:
    """A plan's verdict on these balances, then the request's guard's on its outflows, as a value: the one
    place a plan's refusal is caught."""
    try:
        legs = plan(found)
        guard = _guard.get()
        if guard is not None:
            guard(outflows(legs, found))
        return Valid(legs)
    except DomainError as exc:
        return Refused(exc)


def plan_and_post(
    balance_ids: Sequence[UUID], plan: Plan, booking: Booking, *, with_rate: bool = False
) -> list[Transaction]:
    """Validate a movement with `plan`, then `post` its legs.

    When this process knows every balance's facts (one currency), `plan` runs
    on them and the pre-lock read is skipped; the locked read checks that the
    facts still hold. A refusal is never decided from the known facts: when
    they refuse, or no longer hold under the lock, a fresh read decides. Legs
    converted at a rate are planned again on the locked rows, with the rate
    read under the locks: a rate replaced while the movement waited for a busy
    balance is never booked. `with_rate`: the fresh read carries the rates.
    """
    known = facts.known(balance_ids)
    if known is not None:
        booked = _post_from_facts(balance_ids, plan, booking, known, with_rate)
        if booked is not None:
            return booked
    verdict = validate(plan, _fresh_read(balance_ids, booking.created_by, with_rate))
    if isinstance(verdict, Refused):
        raise verdict.error
    if any(isinstance(leg, Leg) and leg.exchange_rate is not None for leg in verdict.legs):
        return post(verdict.legs, booking, settle=plan, with_rate=True)
    return post(verdict.legs, booking)


def _post_from_facts(
    balance_ids: Sequence[UUID],
    plan: Plan,
    booking: Booking,
    known: Mapping[UUID, BalanceFacts],
    with_rate: bool,
) -> list[Transaction] | None:
    """Post what `plan` makes of the known facts; None when a fresh read must decide (nothing was written)."""
    verdict = validate(plan, known)
    if isinstance(verdict, Refused):
        return None
    try:
        return post_if_facts_hold(verdict.legs, booking, known)
    except (LockTimeout, ServiceUnavailable) as exc:
        # A 404 of the fresh read comes before the 429 or 503, as when the facts were not known.
        fresh = validate(plan, _fresh_read(balance_ids, booking.created_by, with_rate))
        if isinstance(fresh, Refused):
            raise fresh.error from exc
        raise


def plan_and_post_parts(
    balance_ids: Sequence[UUID], plans: Sequence[Plan], booking: Booking, *, with_rate: bool = False
) -> list[Transaction]:
    """Validate several movements, each with its `plan`, then post them as one (`engine.post_parts`): one
    transaction, every balance locked once, all of them or nothing; the entries of all, in order.

    As `plan_and_post` does for one: from the known facts when this process has them all (one currency),
    else from one fresh read of every balance; a refusal is decided by the fresh read. Every plan is
    judged, and the refusals of all that refuse are raised together as `PartsRefused`; the request's
    guard then judges the outflows of all the movements together (a large movement split in parts is still
    large). Movements converted at a rate are planned again on the locked rows. Under the locks, the
    first part refused is raised as `PartsRefused`.
    """
    known = facts.known(balance_ids)
    if known is not None:
        booked = _post_parts_from_facts(balance_ids, plans, booking, known, with_rate)
        if booked is not None:
            return booked
    parts = _parts_or_refusals(plans, _fresh_read(balance_ids, booking.created_by, with_rate))
    if isinstance(parts, Refused):
        raise parts.error
    if isinstance(parts, PartsRefused):
        raise parts
    converted = any(part.settle is not None for part in parts)
    entries = post_parts(parts, booking, with_rate=converted)
    assert entries is not None  # only known facts can change
    return entries


def _post_parts_from_facts(
    balance_ids: Sequence[UUID],
    plans: Sequence[Plan],
    booking: Booking,
    known: Mapping[UUID, BalanceFacts],
    with_rate: bool,
) -> list[Transaction] | None:
    """Post what the `plans` make of the known facts; None when a fresh read must decide (nothing was written)."""
    parts = _parts_or_refusals(plans, known)
    if not isinstance(parts, list):
        return None
    try:
        return post_parts(parts, booking, validated=known)
    except (LockTimeout, ServiceUnavailable) as exc:
        # A 404 of the fresh read comes before the 429 or 503, as when the facts were not known.
        fresh = _parts_or_refusals(plans, _fresh_read(balance_ids, booking.created_by, with_rate))
        if isinstance(fresh, Refused):
            raise fresh.error from exc
        if isinstance(fresh, PartsRefused):
            raise fresh from exc
        raise


def _parts_or_refusals(
    plans: Sequence[Plan], found: Mapping[UUID, BalanceRow | BalanceFacts]
) -> list[Part] | PartsRefused | Refused:
    """Every plan's verdict on these balances: the parts to post, or the refusals of the plans that refuse; then
    the request's guard's verdict on the outflows of all (Refused)."""
    parts: list[Part] = []
    refusals: list[tuple[int, DomainError]] = []
    for index, plan in enumerate(plans):
        try:
            legs = plan(found)
        except DomainError as exc:
            refusals.append((index, exc))
            continue
        # Converted at a rate: planned again on the locked rows, with the rate read under the locks.
        converted = any(isinstance(leg, Leg) and leg.exchange_rate is not None for leg in legs)
        parts.append(Part(legs, settle=plan if converted else None))
    if refusals:
        return PartsRefused(refusals)
    guard = _guard.get()
    if guard is not None:
        try:
            guard(outflows([step for part in parts for step in part.steps], found))
        except DomainError as exc:
            return Refused(exc)
    return parts


def _fresh_read(balance_ids: Sequence[UUID], actor: User | None, with_rate: bool) -> dict[UUID, BalanceRow]:
    """The balances as they are now, before the locks, remembered for the next movement; refuses an inactive
    actor first, as the locked read does."""
    found = read_balances(balance_ids, with_rate=with_rate, actor=actor)
    facts.remember(found.values())
    ensure_actor_active(found, actor)
    return found
