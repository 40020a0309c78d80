"""Reads of the ledger: a user's history, one entry, and what is refunded of a payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from django.db.models import Q, QuerySet, Sum

from transactions.models import REFUNDABLE_TYPES, Transaction, TransactionType
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


def refunded_amount(*, payment: Transaction) -> Decimal:
    """What counts as refunded of a payment or a capture so far: its amount less what may still be refunded.

    Refunds carry the reference of what they refund. A payment is alone under
    its reference; a hold's captures share the hold's, and their refunds are
    counted together: each capture may be refunded up to its amount, while
    all of them together never get back more than was captured.
    """
    totals = Transaction.objects.filter(
        reference=payment.reference, wallet_balance_id=payment.wallet_balance_id
    ).aggregate(
        paid=Sum("amount", filter=Q(type__in=REFUNDABLE_TYPES)),
        refunded=Sum("amount", filter=Q(type=TransactionType.REFUND)),
    )
    left = (totals["paid"] or Decimal(0)) - (totals["refunded"] or Decimal(0))
    return payment.amount - max(Decimal(0), min(payment.amount, left))
