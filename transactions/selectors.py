"""Reads of the ledger: a user's history and one entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from django.db.models import QuerySet

from transactions.models import Transaction
from wallet_project.errors import NotFound

if TYPE_CHECKING:
    from accounts.models import User


@dataclass(frozen=True)
class HistoryFilters:
    wallet_balance_id: UUID | None = None
    wallet_id: UUID | None = None
    type: str | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


def transaction_history(*, owner: User, filters: HistoryFilters) -> QuerySet[Transaction]:
    """The owner's entries (newest first once paginated); ids that are not the owner's simply match nothing."""
    entries = Transaction.objects.filter(owner=owner)
    if filters.wallet_balance_id:
        entries = entries.filter(wallet_balance_id=filters.wallet_balance_id)
    if filters.wallet_id:
        entries = entries.filter(wallet_id=filters.wallet_id)
    if filters.type:
        entries = entries.filter(type=filters.type)
    if filters.created_after:
        entries = entries.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        entries = entries.filter(created_at__lt=filters.created_before)
    return entries


def transaction_get(*, owner: User, entry_id: UUID) -> Transaction:
    """One of the owner's entries; raises NotFound."""
    entry = Transaction.objects.filter(pk=entry_id, owner=owner).first()
    if entry is None:
        raise NotFound("No such transaction.")
    return entry
