"""Holds as the API shows them, written out by hand as the ledger's entries are (`entry_representation`):
for the API's answers and for the holds' events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rest_framework import serializers

from transactions.models import Hold, Transaction, TransactionType
from transactions.serializers import entry_representation
from wallet_project.money import format_amount
from wallets.selectors import minor_unit_of

_TIMESTAMP = serializers.DateTimeField()


def hold_representation(hold: Hold, entries: Sequence[Transaction]) -> dict[str, Any]:
    """A hold with its capture entries, as HoldOutputSerializer declares it, written out by hand as the
    ledger's entries are (`entry_representation`)."""
    minor_unit = minor_unit_of(hold.currency_id)
    resolved_at = hold.resolved_at_now
    return {
        "id": str(hold.pk),
        "wallet_balance_id": str(hold.wallet_balance_id),
        "currency": hold.currency_id,
        "amount": format_amount(hold.amount, minor_unit),
        "captured_amount": format_amount(hold.captured_amount, minor_unit),
        "remaining": format_amount(hold.remaining, minor_unit),
        "status": str(hold.status_now),
        "description": hold.description,
        "merchant": hold.merchant,
        "expires_at": _TIMESTAMP.to_representation(hold.expires_at),
        "created_at": _TIMESTAMP.to_representation(hold.created_at),
        "resolved_at": None if resolved_at is None else _TIMESTAMP.to_representation(resolved_at),
        "entries": [entry_representation(entry) for entry in entries],
    }


def holds_representation(holds: Sequence[Hold]) -> list[dict[str, Any]]:
    """Holds with their capture entries, the entries of all of them read in one query."""
    captures: dict[Any, list[Transaction]] = {hold.reference: [] for hold in holds}
    if captures:
        for entry in Transaction.objects.filter(reference__in=list(captures), type=TransactionType.CAPTURE).order_by(
            "sequence"
        ):
            captures[entry.reference].append(entry)
    return [hold_representation(hold, captures[hold.reference]) for hold in holds]
