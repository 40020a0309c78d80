"""What this process knows of the balances it has read: enough to validate a movement before the locks.

A balance's wallet, owner, currency and minor unit never change once it
exists (`BalanceFacts`). A movement whose balances are all known, in one
currency, validates from them and skips its pre-lock read: one statement and
one round trip fewer (docs/PERFORMANCE.md, "Known balance facts skip the
pre-lock read"). The engine reads the same rows under the locks anyway and
checks there that the facts still hold (`hold`); a refusal is never decided
from these facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar
from uuid import UUID

from transactions.posting.rows import BalanceRow


@dataclass(frozen=True, slots=True)
class BalanceFacts:
    """What never changes once a balance exists: enough to validate a movement on it before the locks.

    Never its amount or its wallet's state: those are read under the lock only.
    """

    pk: UUID
    wallet_id: UUID
    currency_id: str
    minor_unit: int
    owner_id: UUID
    # Facts are kept only while the owner is active; the engine checks it again on the locked row.
    owner_is_active: ClassVar[bool] = True

    @classmethod
    def of(cls, balance: BalanceRow) -> BalanceFacts:
        return cls(balance.pk, balance.wallet_id, balance.currency_id, balance.minor_unit, balance.owner_id)


# The facts of the balances this process has read lately, oldest first. No lock: each step is one
# dict operation under the GIL, and none of them raises when another thread got there first.
MAX_KEPT = 2_048
kept: dict[UUID, BalanceFacts] = {}


def remember(balances: Iterable[BalanceRow]) -> None:
    """Keep the facts of these balances, or forget them where the owner is not active; when full, drop the oldest."""
    for balance in balances:
        if not balance.owner_is_active:
            kept.pop(balance.pk, None)
            continue
        while len(kept) >= MAX_KEPT and balance.pk not in kept:
            try:
                kept.pop(next(iter(kept)), None)
            except (StopIteration, RuntimeError):  # another thread emptied or changed it meanwhile
                break
        kept[balance.pk] = BalanceFacts.of(balance)


def known(balance_ids: Sequence[UUID]) -> dict[UUID, BalanceFacts] | None:
    """The facts of every one of these balances, if all are known and share one currency; else None.

    Two currencies mean a conversion, and the current rate is never kept: it needs the fresh read.
    """
    found = {}
    for balance_id in balance_ids:
        facts = kept.get(balance_id)
        if facts is None:
            return None
        found[balance_id] = facts
    if len({facts.currency_id for facts in found.values()}) > 1:
        return None
    return found


def hold(locked: Mapping[UUID, BalanceRow], validated: Mapping[UUID, BalanceFacts]) -> bool:
    """Whether the locked rows still show the facts a movement was validated from, with their owners active."""
    return all(
        balance.owner_is_active and BalanceFacts.of(balance) == validated[balance_id]
        for balance_id, balance in locked.items()
    )
