"""Booking: the pending rewards' money moved in batches, one posting per programme and batch.

A payment only writes its reward (`loyalty.earning`); this moves the money,
so that the funding balance is locked once per batch, never once per payment:
it would otherwise be the one balance every payment in the currency waits for.
Each posting locks the funding balance and a few payers' balances (in id order,
like every posting; few, because a payment of a payer in the batch waits for
it) and, per reward, books a LOYALTY credit on the payer and a LOYALTY_FUNDING
debit on the funding balance, both under the payment's reference. The
rewards are read again under the locks, so a refund or another worker that got
there first is seen.

A reward the funding balance cannot cover (what is left of it available,
after the rewards before it in the batch) is `unfunded`: nothing is earned,
the programme counts it, a warning is logged and the payer gets a
`loyalty.unfunded` event (in the one statement of the posting's events). A
reward refunded in full before it was booked has nothing to book
(`reversed`). A reward whose payer's wallet is frozen, or whose
funding wallet is, stays pending: it is booked once the wallet is unfrozen.
`manage.py book_loyalty` runs `rewards_book` once or as a small worker.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from django.db import connection
from django.db.models import F

from events import outbox
from events.models import EventType
from loyalty.models import LoyaltyProgram, Reward, RewardStatus
from loyalty.rendering import rewards_representation
from transactions.models import Transaction, TransactionSource, TransactionType
from transactions.posting.engine import post
from transactions.posting.movement import Booking, Leg, Reserve
from wallet_project.errors import LockTimeout, ServiceUnavailable
from wallet_project.money import EXACT, MAX_BALANCE, format_amount
from wallets.selectors import minor_unit_of

if TYPE_CHECKING:
    from transactions.posting.rows import BalanceRow

logger = logging.getLogger("wallet.loyalty")

DEFAULT_BATCH = 500  # rewards per round
# A posting holds its payers' balances while it books them, and a payment of one of them waits (a sync web
# worker idle meanwhile): each posting takes few payers, so that few payments wait, and briefly.
PAYERS_PER_POSTING = 16


@dataclass
class Round:
    """What one round of the worker did."""

    pending: int = 0  # pending rewards it found (a full batch: more may be waiting)
    booked: int = 0
    unfunded: int = 0
    reversed: int = 0
    left_pending: int = 0  # frozen wallets, a busy balance, Redis down: the next round tries again


@dataclass(frozen=True, slots=True)
class _Pending:
    """What the decision needs of a pending reward, read under the locks (no model instance: a batch has hundreds)."""

    id: UUID
    amount: Decimal
    reversed_amount: Decimal
    wallet_balance_id: UUID
    reference: UUID
    owner_id: UUID

    @property
    def net(self) -> Decimal:
        return self.amount - self.reversed_amount


_PENDING_FIELDS = ("id", "amount", "reversed_amount", "wallet_balance_id", "reference", "owner_id")


@dataclass
class _Batch:
    """The decisions of one posting, made under its locks."""

    booked: list[_Pending] = field(default_factory=list)
    unfunded: list[_Pending] = field(default_factory=list)
    reversed: list[_Pending] = field(default_factory=list)
    left: int = 0
    funding_available: Decimal = Decimal(0)


_REWARDS = Reward._meta.db_table
# One statement per outcome, whatever the size of the batch: the ids go as one array parameter. A booked
# reward moved what it had left (`amount − reversed_amount`, read under the same locks).
_MARK_BOOKED = (
    f"UPDATE {_REWARDS} SET status = %s, booked_amount = amount - reversed_amount,"  # noqa: S608
    " funding_balance_id = %s, booked_at = clock_timestamp() WHERE id = ANY(%s::uuid[])"
)
_MARK = f"UPDATE {_REWARDS} SET status = %s WHERE id = ANY(%s::uuid[])"  # noqa: S608


def rewards_book(*, limit: int = DEFAULT_BATCH, source: str = TransactionSource.SYSTEM) -> Round:
    """Book up to `limit` pending rewards, the oldest first, in postings of one programme and at most
    `PAYERS_PER_POSTING` payers' balances each; the entries say `source`."""
    pending = list(
        # A frozen payer's rewards wait for the unfreezing without holding up the others' (they are few).
        Reward.objects.filter(status=RewardStatus.PENDING, wallet_balance__wallet__is_frozen=False)
        .order_by("created_at", "id")
        .values_list("id", "program_id", "wallet_balance_id")[:limit]
    )
    done = Round(pending=len(pending))
    by_program: dict[UUID, list[tuple[UUID, UUID]]] = defaultdict(list)
    for reward_id, program_id, balance_id in pending:
        by_program[program_id].append((reward_id, balance_id))
    programs = LoyaltyProgram.objects.in_bulk(list(by_program))
    for program_id, rewards in by_program.items():
        for some in _by_payers(rewards):
            try:
                batch = _book(programs[program_id], some, source)
            except (LockTimeout, ServiceUnavailable):
                done.left_pending += len(some)
                continue
            done.booked += len(batch.booked)
            done.unfunded += len(batch.unfunded)
            done.reversed += len(batch.reversed)
            done.left_pending += batch.left
            if batch.unfunded:
                _warn_unfunded(programs[program_id], batch)
    return done


def _by_payers(rewards: Sequence[tuple[UUID, UUID]]) -> list[list[tuple[UUID, UUID]]]:
    """The rewards in groups of at most `PAYERS_PER_POSTING` payer balances (each posting decides its rewards
    oldest first, as it reads them again under the locks)."""
    of_payer: dict[UUID, list[tuple[UUID, UUID]]] = defaultdict(list)
    for reward in rewards:
        of_payer[reward[1]].append(reward)
    payers = list(of_payer)
    groups = [payers[start : start + PAYERS_PER_POSTING] for start in range(0, len(payers), PAYERS_PER_POSTING)]
    return [[reward for payer in group for reward in of_payer[payer]] for group in groups]


def _book(program: LoyaltyProgram, rewards: Sequence[tuple[UUID, UUID]], source: str) -> _Batch:
    """One posting: the funding balance and every payer's balance locked, the rewards decided under the locks."""
    funding_id = program.funding_balance_id
    reward_ids = [reward_id for reward_id, _ in rewards]
    balance_ids = {funding_id, *(balance_id for _, balance_id in rewards)}
    batch = _Batch()

    def settle(locked: Mapping[UUID, BalanceRow]) -> list[Leg]:
        current = [
            _Pending(*row)
            for row in Reward.objects.filter(pk__in=reward_ids, status=RewardStatus.PENDING)
            .order_by("created_at", "id")
            .values_list(*_PENDING_FIELDS)
        ]
        return _decide(current, locked, funding_id, batch)

    def record(entries: Sequence[Transaction]) -> None:
        _record(program, funding_id, batch)

    booking = Booking(None, source, "Loyalty cashback", on_posted=record, tells=lambda: _unfunded_events(batch))
    # Every balance is locked; the legs are decided under the locks from the rewards as they are then.
    post([Reserve(balance_id, Decimal(0)) for balance_id in balance_ids], booking, settle=settle)
    return batch


def _decide(
    rewards: Sequence[_Pending], locked: Mapping[UUID, BalanceRow], funding_id: UUID, batch: _Batch
) -> list[Leg]:
    """Each reward booked, unfunded, reversed or left pending, in order; the legs of the booked ones."""
    funding = locked[funding_id]
    available = funding.available
    credited: dict[UUID, Decimal] = defaultdict(Decimal)
    legs: list[Leg] = []
    for reward in rewards:
        net = reward.net
        payer = locked.get(reward.wallet_balance_id)
        if net <= 0:
            batch.reversed.append(reward)
        elif funding.is_frozen or payer is None or payer.is_frozen:
            batch.left += 1  # no money moves into or out of a frozen wallet: booked once it is unfrozen
        elif net > available:
            batch.unfunded.append(reward)
        elif EXACT.add(payer.amount, credited[payer.pk] + net) > MAX_BALANCE:
            batch.left += 1  # a balance at the column's largest amount: left for a look by hand
        else:
            available -= net
            credited[payer.pk] += net
            batch.booked.append(reward)
            legs += [
                Leg(payer.pk, TransactionType.LOYALTY, net, checks=(), reference=reward.reference),
                Leg(funding_id, TransactionType.LOYALTY_FUNDING, net, checks=(), reference=reward.reference),
            ]
    batch.funding_available = available
    return legs


def _record(program: LoyaltyProgram, funding_id: UUID, batch: _Batch) -> None:
    """The rewards' new states and the programme's unfunded count, in the posting's transaction."""
    with connection.cursor() as cursor:
        if batch.booked:
            cursor.execute(_MARK_BOOKED, [RewardStatus.BOOKED.value, funding_id, [r.id for r in batch.booked]])
        for status, rewards in ((RewardStatus.UNFUNDED, batch.unfunded), (RewardStatus.REVERSED, batch.reversed)):
            if rewards:
                cursor.execute(_MARK, [status.value, [reward.id for reward in rewards]])
    if batch.unfunded:
        LoyaltyProgram.objects.filter(pk=program.pk).update(
            unfunded_count=F("unfunded_count") + len(batch.unfunded),
            unfunded_amount=F("unfunded_amount") + _shortfall(batch),
        )


def _unfunded_events(batch: _Batch) -> list[outbox.NewEvent]:
    """The payers' `loyalty.unfunded` events, written in the one statement of the posting's events (so that no
    two transactions ever take event counters in opposite orders). Each shows its reward as it now is."""
    if not batch.unfunded:
        return []
    rewards = list(
        Reward.objects.filter(pk__in=[reward.id for reward in batch.unfunded])
        .select_related("program")
        .order_by("created_at", "id")
    )
    for reward in rewards:
        reward.status = RewardStatus.UNFUNDED
    return [
        outbox.event(EventType.LOYALTY_UNFUNDED, user_id=reward.owner_id, data=data)
        for reward, data in zip(rewards, rewards_representation(rewards), strict=True)
    ]


def _warn_unfunded(program: LoyaltyProgram, batch: _Batch) -> None:
    minor_unit = minor_unit_of(program.currency_id)
    shortfall = _shortfall(batch)
    logger.warning(
        "loyalty cashback unfunded: the funding balance cannot cover it",
        extra={
            "program_id": str(program.pk),
            "funding_balance_id": str(program.funding_balance_id),
            "funding_available": format_amount(batch.funding_available, minor_unit),
            "rewards": len(batch.unfunded),
            "amount": format_amount(shortfall, minor_unit),
            "currency": program.currency_id,
            "reward_ids": [str(reward.id) for reward in batch.unfunded[:20]],
        },
    )


def _shortfall(batch: _Batch) -> Decimal:
    """What the unfunded rewards of a batch would have moved."""
    return sum((reward.net for reward in batch.unfunded), Decimal(0))
