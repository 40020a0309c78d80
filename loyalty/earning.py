"""Earning: a payment's cashback decided and written in the payment's own statement.

A payment (or a hold's capture) hands the posting engine an `EarnRider`: its
statement rides in the INSERT of the payment's entry (`posting.hooks.Rider`),
so a payment with cashback costs no statement and no round trip more than one
without, and a rolled-back payment leaves no reward while a committed one
never misses its own. The statement reads the currency's programme as it is
at that moment and writes a `pending` reward of

    min(round_down(amount × earn_rate / 10,000, minor unit), max_per_payment)

when the programme is active and within its validity, the reward is at least
one minor unit, and the payer is not an operator (staff) account. The money
moves later, in batches, by `loyalty.booking`: the funding balance is never
locked by a payment. The payments of a batch of movements
(`transactions.batches`) earn theirs the same way, all in one statement
(`EarnEachRider`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from loyalty.models import BASIS_POINTS, LoyaltyProgram, Reward, RewardStatus
from transactions.models import REFUNDABLE_TYPES, Transaction
from wallet_project.ids import uuid7
from wallet_project.money import EXACT, round_down
from wallet_project.pg_arrays import bare, texts, uuids
from wallets.selectors import minor_unit_of

_PROGRAMS = LoyaltyProgram._meta.db_table
_REWARDS = Reward._meta.db_table
_USERS = User._meta.db_table

# Built from the models' own table names and %s placeholders only: no input reaches the SQL text.
# `trunc` of a positive numeric to the minor unit is a rounding down; LEAST ignores a NULL cap.
_EARN = f"""
    INSERT INTO {_REWARDS} AS reward (id, program_id, payment_id, reference, wallet_balance_id, owner_id,
        currency_id, amount, booked_amount, reversed_amount, unreversed_amount, refunded_amount, status, created_at)
    SELECT %s, program.id, %s, %s, %s, %s, program.currency_id, earned.amount, 0, 0, 0, 0, %s, clock_timestamp()
    FROM {_PROGRAMS} AS program,
         LATERAL (SELECT LEAST(trunc(%s::numeric * program.earn_rate / {BASIS_POINTS}, %s),
                               program.max_per_payment) AS amount) AS earned
    WHERE program.currency_id = %s AND program.is_active
      AND program.valid_from <= clock_timestamp()
      AND (program.valid_to IS NULL OR clock_timestamp() < program.valid_to)
      AND earned.amount > 0
      AND NOT EXISTS (SELECT 1 FROM {_USERS} AS payer WHERE payer.id = %s AND payer.is_staff)
    RETURNING json_build_array(reward.id::text, reward.amount::text, reward.program_id::text,
        (SELECT program.name FROM {_PROGRAMS} AS program WHERE program.id = reward.program_id)) AS result
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class Earned:
    """The cashback a payment earned, as its answer shows it: pending until the worker books it."""

    reward_id: UUID
    amount: Decimal
    currency: str
    program_id: UUID
    program_name: str
    status: str = RewardStatus.PENDING


def earned_by(entry: Transaction) -> Earned | None:
    """What the payment or capture `entry` earned when it was booked (None: nothing)."""
    return getattr(entry, "cashback", None)


class EarnRider:
    """The pending reward of one payment or capture: the posting's rider (see the module docstring).

    The payment's entry is the posting's first (its only ledger entry). Once written, the entry carries
    what it earned as `cashback` (`earned_by`).
    """

    many = False

    def statement(self, entries: Sequence[Transaction]) -> tuple[str, list[Any]]:
        payment = entries[0]
        params = [
            uuid7(),
            payment.pk,
            payment.reference,
            payment.wallet_balance_id,
            payment.owner_id,
            RewardStatus.PENDING.value,
            payment.amount,
            minor_unit_of(payment.currency_id),
            payment.currency_id,
            payment.owner_id,
        ]
        return _EARN, params

    def orm(self, entries: Sequence[Transaction]) -> Any:
        """The statement through the ORM (SQLite, the single-process development mode)."""
        payment = entries[0]
        now = timezone.now()
        program = (
            LoyaltyProgram.objects.filter(currency_id=payment.currency_id, is_active=True, valid_from__lte=now)
            .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
            .first()
        )
        if program is None or User.objects.filter(pk=payment.owner_id, is_staff=True).exists():
            return None
        amount = earn_amount(payment.amount, program, minor_unit_of(payment.currency_id))
        if amount <= 0:
            return None
        reward = Reward.objects.create(
            program=program,
            payment_id=payment.pk,
            reference=payment.reference,
            wallet_balance_id=payment.wallet_balance_id,
            owner_id=payment.owner_id,
            currency_id=payment.currency_id,
            amount=amount,
        )
        return [str(reward.pk), str(reward.amount), str(program.pk), program.name]

    def written(self, entries: Sequence[Transaction], result: Any) -> None:
        payment = entries[0]
        earned = None
        if result is not None:
            reward_id, amount, program_id, program_name = result
            earned = Earned(UUID(reward_id), Decimal(amount), payment.currency_id, UUID(program_id), program_name)
        payment.cashback = earned  # type: ignore[attr-defined]


# The same decision as `_EARN`, for every payment of a posting at once: one array per column.
_EARN_EACH = f"""
    INSERT INTO {_REWARDS} AS reward (id, program_id, payment_id, reference, wallet_balance_id, owner_id,
        currency_id, amount, booked_amount, reversed_amount, unreversed_amount, refunded_amount, status, created_at)
    SELECT payment.reward_id, program.id, payment.id, payment.reference, payment.wallet_balance_id, payment.owner_id,
           program.currency_id, earned.amount, 0, 0, 0, 0, %s, clock_timestamp()
    FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::uuid[], %s::uuid[], %s::numeric[], %s::integer[], %s::text[])
             AS payment (reward_id, id, reference, wallet_balance_id, owner_id, amount, minor_unit, currency_id)
    JOIN {_PROGRAMS} AS program ON program.currency_id = payment.currency_id AND program.is_active
      AND program.valid_from <= clock_timestamp()
      AND (program.valid_to IS NULL OR clock_timestamp() < program.valid_to),
         LATERAL (SELECT LEAST(trunc(payment.amount * program.earn_rate / {BASIS_POINTS}, payment.minor_unit),
                               program.max_per_payment) AS amount) AS earned
    WHERE earned.amount > 0
      AND NOT EXISTS (SELECT 1 FROM {_USERS} AS payer WHERE payer.id = payment.owner_id AND payer.is_staff)
    RETURNING json_build_array(reward.id::text, reward.amount::text, reward.program_id::text,
        (SELECT program.name FROM {_PROGRAMS} AS program WHERE program.id = reward.program_id),
        reward.payment_id::text) AS result
"""  # noqa: S608


class EarnEachRider:
    """The pending rewards of every payment among a posting's entries (a batch of movements): the posting's
    rider, whose statement decides them all at once, as `EarnRider` decides one. Once written, each payment's
    entry carries what it earned as `cashback` (`earned_by`), None when nothing."""

    many = True

    def statement(self, entries: Sequence[Transaction]) -> tuple[str, list[Any]]:
        payments = _payments(entries)
        columns: list[list[Any]] = [[] for _ in range(8)]
        for payment in payments:
            row = (
                uuid7(),
                payment.pk,
                payment.reference,
                payment.wallet_balance_id,
                payment.owner_id,
                payment.amount,
                minor_unit_of(payment.currency_id),
                payment.currency_id,
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        *ids, amounts, minor_units, currencies = columns
        arrays = [*(uuids(column) for column in ids), bare(amounts), bare(minor_units), texts(currencies)]
        return _EARN_EACH, [RewardStatus.PENDING.value, *arrays]

    def orm(self, entries: Sequence[Transaction]) -> Any:
        """The statement through the ORM (SQLite, the single-process development mode)."""
        earned = []
        for payment in _payments(entries):
            result = EarnRider().orm([payment])
            if result is not None:
                earned.append([*result, str(payment.pk)])
        return earned or None

    def written(self, entries: Sequence[Transaction], result: Any) -> None:
        by_payment = {UUID(row[4]): row[:4] for row in result or ()}
        for payment in _payments(entries):
            EarnRider().written([payment], by_payment.get(payment.pk))


def _payments(entries: Sequence[Transaction]) -> list[Transaction]:
    """The entries that earn cashback: payments and captures."""
    return [entry for entry in entries if entry.type in REFUNDABLE_TYPES]


def earn_amount(amount: Decimal, program: LoyaltyProgram, minor_unit: int) -> Decimal:
    """What a payment of `amount` earns under `program`: the rate's share rounded down, at most the cap.

    The statement computes the same in SQL; this one serves the development mode and explanations.
    """
    earned = round_down(
        EXACT.divide(EXACT.multiply(amount, Decimal(program.earn_rate)), Decimal(BASIS_POINTS)), minor_unit
    )
    if program.max_per_payment is not None:
        earned = min(earned, program.max_per_payment)
    return earned
