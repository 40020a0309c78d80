"""Validation in front of the road: a movement's `Plan` turns its balances into legs, or refuses.

The balances are read afresh before the locks, or taken from what this
process knows of them (`facts`, one statement and one round trip fewer).
A plan's refusal is a value here (`Valid` or `Refused`), caught in one
place (`validate`); a refusal is never decided from the known facts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from transactions.models import Transaction
from transactions.posting import facts
from transactions.posting.engine import ensure_actor_active, post, post_if_facts_hold
from transactions.posting.facts import BalanceFacts
from transactions.posting.movement import Booking, Leg, Step
from transactions.posting.rows import BalanceRow, read_balances
from wallet_project.errors import DomainError, LockTimeout, NotFound, ServiceUnavailable

if TYPE_CHECKING:
    from accounts.models import User

# Turns the balances, as read afresh (BalanceRow) or as known (BalanceFacts), into the movement's steps;
# raises the refusal.
Plan = Callable[[Mapping[UUID, BalanceRow | BalanceFacts]], Sequence[Step]]


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
    """A plan's verdict on these balances, as a value: the one place a plan's refusal is caught."""
    try:
        return Valid(plan(found))
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


def _fresh_read(balance_ids: Sequence[UUID], actor: User | None, with_rate: bool) -> dict[UUID, BalanceRow]:
    """The balances as they are now, before the locks, remembered for the next movement; refuses an inactive
    actor first, as the locked read does."""
    found = read_balances(balance_ids, with_rate=with_rate, actor=actor)
    facts.remember(found.values())
    ensure_actor_active(found, actor)
    return found
