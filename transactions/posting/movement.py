"""What a movement is made of, as data: its legs, the checks of each leg, and its booking.

A service describes a movement with these and hands it to the engine
(`engine.post`, or `planning.plan_and_post` when it validates before the
locks); the engine knows no movement by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from transactions.models import TransactionType
from transactions.posting.hooks import OnBooked
from transactions.posting.rows import BalanceRow
from wallet_project.errors import WalletFrozen

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
    """One ledger entry of a movement: on which balance, of what type and amount, and its checks."""

    balance_id: UUID
    type: TransactionType
    amount: Decimal
    related_balance_id: UUID | None = None
    exchange_rate: Decimal | None = None
    checks: tuple[Check, ...] = (not_frozen,)


@dataclass(frozen=True, slots=True)
class Booking:
    """What every entry of one movement shares: who asks, from where, what it says, and its hook."""

    created_by: User | None
    source: str
    description: str = ""
    merchant: str = ""
    reference: UUID | None = None  # a new one unless given (a refund carries its payment's)
    on_booked: OnBooked | None = None


# Rules that need the locked rows; returns the final legs, on the same balances.
Settle = Callable[[Mapping[UUID, BalanceRow]], Sequence[Leg]]
