"""Reads of a balance at a point in time, and of a statement's entries.

A balance's ledger is a chain: each entry's `balance_after` is the balance
right after it, and the chain's order (`sequence`) is its time order
(`created_at` is taken after the balance's row lock, DESIGN.md). So the
amount at an instant is the `balance_after` of the last entry created at or
before it, found by one probe of the history index
`txn_owner_balance_history` (owner, balance, created_at descending): the cost
does not grow with the ledger. And the entries of a period are a range of
sequence numbers, between the entries that close the day before it starts and
the one before it ends, read in chain order from the unique
(balance, sequence) index in chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from transactions.models import Transaction
from wallet_project.errors import NotFound
from wallets.models import WalletBalance

if TYPE_CHECKING:
    from accounts.models import User

# Entries read per query of a statement: a page of the PDF is ~50, a chunk of CSV ~300 KB.
ENTRY_CHUNK_SIZE = 1000


@dataclass(frozen=True)
class PointInTime:
    """What a balance held at an instant, and the entry that made it so (sequence 0: none yet)."""

    amount: Decimal
    sequence: int
    changed_at: datetime | None


BEFORE_FIRST_ENTRY = PointInTime(amount=Decimal(0), sequence=0, changed_at=None)


@dataclass(frozen=True)
class BalanceAsOf:
    balance: WalletBalance
    as_of: datetime  # the instant answered: the one asked, or now if it asked for a later one
    point: PointInTime


@dataclass(frozen=True)
class Statement:
    """A balance over [start, end): its opening and closing points; the entries between them are read as they are
    written out (`statement_entries`)."""

    balance: WalletBalance  # with its wallet, currency and owner
    start: datetime
    end: datetime
    opening: PointInTime
    closing: PointInTime
    generated_at: datetime
    using: str = DEFAULT_DB_ALIAS  # the database it was read from, which its entries are read from too

    @property
    def holder(self) -> User:
        return self.balance.wallet.owner


def owned_balance(*, owner: User, balance_id: UUID, using: str = DEFAULT_DB_ALIAS) -> WalletBalance:
    """The owner's balance with its wallet, owner and currency; raises NotFound for anyone else's."""
    balance = (
        WalletBalance.objects.using(using)
        .select_related("currency", "wallet__owner")
        .filter(pk=balance_id, wallet__owner=owner)
        .first()
    )
    if balance is None:
        raise NotFound("No such wallet balance.")
    return balance


def balance_at(
    *,
    owner_id: int | UUID,
    balance_id: UUID,
    instant: datetime,
    inclusive: bool = True,
    using: str = DEFAULT_DB_ALIAS,
) -> PointInTime:
    """The balance at `instant`: after every entry created at it or before (`inclusive`), or strictly before it.

    One probe of `txn_owner_balance_history`, walked from `instant` backwards
    and stopped at the first entry. Two entries of one posting may share a
    `created_at`; the later in the chain (higher `sequence`) is the balance
    after both, so ties are broken by `sequence`, an incremental sort of the
    few rows with the first timestamp found.
    """
    entries = Transaction.objects.using(using).filter(owner_id=owner_id, wallet_balance_id=balance_id)
    entries = entries.filter(created_at__lte=instant) if inclusive else entries.filter(created_at__lt=instant)
    last = entries.order_by("-created_at", "-sequence").values_list("balance_after", "sequence", "created_at").first()
    if last is None:
        return BEFORE_FIRST_ENTRY
    return PointInTime(amount=last[0], sequence=last[1], changed_at=last[2])


def balance_as_of(*, owner: User, balance_id: UUID, instant: datetime) -> BalanceAsOf:
    """The owner's balance as it was at `instant` (now, for a later instant); raises NotFound."""
    balance = owned_balance(owner=owner, balance_id=balance_id)
    as_of = min(instant, timezone.now())
    return BalanceAsOf(
        balance=balance, as_of=as_of, point=balance_at(owner_id=owner.pk, balance_id=balance.pk, instant=as_of)
    )


def statement_get(
    *, owner: User, balance_id: UUID, start: datetime, end: datetime, using: str = DEFAULT_DB_ALIAS
) -> Statement:
    """The owner's balance over [start, end), with the points that open and close it, read from the database
    `using` (a replica may serve a statement: docs/SCALING.md); raises NotFound.

    `end` is the period as validated (`periods.period_of`): never after now.
    """
    balance = owned_balance(owner=owner, balance_id=balance_id, using=using)
    return Statement(
        balance=balance,
        start=start,
        end=end,
        opening=balance_at(owner_id=owner.pk, balance_id=balance.pk, instant=start, inclusive=False, using=using),
        closing=balance_at(owner_id=owner.pk, balance_id=balance.pk, instant=end, inclusive=False, using=using),
        generated_at=timezone.now(),
        using=using,
    )


def statement_entries(statement: Statement) -> Iterator[list[Transaction]]:
    """The entries after the opening point up to the closing one, in chain order, `ENTRY_CHUNK_SIZE` per query.

    Keyset on `sequence` over the unique (balance, sequence) index: each query
    is a short range of it, however far into the period, and no cursor or
    transaction stays open between chunks. Entries never change, and the range
    was fixed when the statement was read, so later movements do not enter it.
    """
    after = statement.opening.sequence
    while after < statement.closing.sequence:
        chunk = list(
            Transaction.objects.using(statement.using)
            .filter(
                wallet_balance_id=statement.balance.pk, sequence__gt=after, sequence__lte=statement.closing.sequence
            )
            .order_by("sequence")[:ENTRY_CHUNK_SIZE]
        )
        if not chunk:  # the chain has a hole: the statement's check names it
            return
        yield chunk
        after = chunk[-1].sequence
