"""What a movement is made of, as data: its legs, its reservations, the checks of each, and its booking.

A service describes a movement with these and hands it to the engine
(`engine.post`, or `planning.plan_and_post` when it validates before the
locks); several movements posted as one are `Part`s (`engine.post_parts`).
The engine knows no movement by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from events.outbox import NewEvent
from transactions.models import TransactionType
from transactions.posting.hooks import OnPosted, Rider
from transactions.posting.rows import BalanceRow
from wallet_project.errors import DomainError, WalletFrozen

if TYPE_CHECKING:
    from accounts.models import User

# A rule a leg's balance must pass under the lock; raises the refusal.
Check = Callable[[BalanceRow], None]


def not_frozen(balance: BalanceRow) -> None:
    """No money moves into or out of a frozen wallet (WalletFrozen)."""
    if balance.is_frozen:
        raise WalletFrozen(f"Wallet {balance.wallet_id} is frozen; no money may move into or out of it.")


def can_receive(balance: BalanceRow) -> None:
    """Not frozen, said to someone who may not learn that wallet's id, nor why (WalletFrozen)."""
    if balance.is_frozen:
        raise WalletFrozen("The destination balance cannot receive money.")


@dataclass(frozen=True, slots=True)
class Leg:
    """One ledger entry of a movement: on which balance, of what type and amount, and its checks.

    `reference`, when given, is the entry's own instead of the booking's: a posting that books several
    movements at once (the cashback of many payments, a batch) keeps each under its own. So do
    `description` and `merchant`, when given, instead of the booking's.
    """

    balance_id: UUID
    type: TransactionType
    amount: Decimal
    related_balance_id: UUID | None = None
    exchange_rate: Decimal | None = None
    checks: tuple[Check, ...] = (not_frozen,)
    reference: UUID | None = None
    description: str | None = None
    merchant: str | None = None


@dataclass(frozen=True, slots=True)
class Reserve:
    """A change of what a balance holds back for its holds; not a ledger entry, since reserved money has not moved.

    Positive: a new hold reserves `amount` until `until` (it must fit in what the
    balance has available). Negative: a capture or a void releases it.
    """

    balance_id: UUID
    amount: Decimal
    until: datetime | None = None
    checks: tuple[Check, ...] = ()


# One step of a movement: an entry in the ledger, or a change of what a balance reserves.
Step = Leg | Reserve


@dataclass(frozen=True, slots=True)
class Booking:
    """What every entry of one movement shares: who asks, from where, what it says, and its hook."""

    created_by: User | None
    source: str
    description: str = ""
    merchant: str = ""
    reference: UUID | None = None  # a new one unless given (a refund carries its payment's, a capture its hold's)
    on_posted: OnPosted | None = None
    rider: Rider | None = None  # a write decided from the entries, in the statement that inserts them
    # Events decided under the locks (by `settle`), written in the one statement of the posting's events.
    tells: Callable[[], Sequence[NewEvent]] | None = None


# Rules that need the locked rows; returns the final steps, on the same balances.
Settle = Callable[[Mapping[UUID, BalanceRow]], Sequence[Step]]


@dataclass(frozen=True, slots=True)
class Part:
    """One movement of a posting that books several in one transaction (`engine.post_parts`): its steps, and
    its rules on the locked rows (`settle`, as `engine.post` takes it).

    The parts are checked and moved in order, each on the locked rows as the parts before it left them, so
    each sees the balances as they would be had the movements been posted one after the other.
    """

    steps: Sequence[Step]
    settle: Settle | None = None


class PartsRefused(Exception):
    """Rules refused parts of a posting of several (`engine.post_parts`, `planning.plan_and_post_parts`): which
    ones (their places in the posting, in order) and why. Nothing of the posting was written.

    Not a DomainError: the caller says how its parts' refusals are answered. The engine stops at the first
    part refused under the locks; the plans, before them, are all judged.
    """

    def __init__(self, refusals: Sequence[tuple[int, DomainError]]) -> None:
        index, error = refusals[0]
        super().__init__(f"part {index}: {error.message}")
        self.refusals = list(refusals)
