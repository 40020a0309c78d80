"""Events as the API and the webhooks show them: `{id, type, created_at, sequence, data}`.

A `movement.created` event's `data` is the movement as its user sees it:
`{reference, entries}`, the entries it booked on that user's balances, read
from the ledger (immutable, so the same whenever it is read). The other
events carry their object as the API rendered it when it happened.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from rest_framework import serializers

from events.models import Event, EventType
from transactions.models import Transaction
from transactions.serializers import entry_representation

_TIMESTAMP = serializers.DateTimeField()


def render_events(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The events as the API shows them; the entries of all their movements are read in one query."""
    movements = [event for event in events if event.type == EventType.MOVEMENT_CREATED]
    entries: dict[tuple[UUID, UUID | None], list[Transaction]] = defaultdict(list)
    if movements:
        booked = Transaction.objects.filter(reference__in={event.reference for event in movements}).order_by(
            "created_at", "id"
        )
        for entry in booked:
            entries[entry.reference, entry.owner_id].append(entry)
    return [_render(event, entries) for event in events]


def render_event(event: Event) -> dict[str, Any]:
    return render_events([event])[0]


def _render(event: Event, entries: dict[tuple[UUID, UUID | None], list[Transaction]]) -> dict[str, Any]:
    if event.type == EventType.MOVEMENT_CREATED:
        data: Any = {
            "reference": str(event.reference),
            "entries": [entry_representation(entry) for entry in entries[event.reference, event.user_id]],
        }
    else:
        data = event.data
    return {
        "id": str(event.pk),
        "type": event.type,
        "created_at": _TIMESTAMP.to_representation(event.created_at),
        "sequence": event.sequence,
        "data": data,
    }
