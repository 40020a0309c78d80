"""The holds' events, written in the transaction that changed the hold (`events.outbox`)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from events import outbox
from events.models import EventType
from transactions.holds.rendering import holds_representation
from transactions.models import Hold


def hold_tell(kind: EventType, hold: Hold) -> None:
    """The hold's event: the hold as the API renders it now."""
    outbox.record(kind, user_id=hold.owner_id, data=holds_representation([hold])[0])


def holds_expired_tell(hold_ids: Sequence[UUID]) -> None:
    """The `hold.expired` events of the holds the posting engine just released for their expiry."""
    for hold in Hold.objects.filter(pk__in=hold_ids).order_by("pk"):
        hold_tell(EventType.HOLD_EXPIRED, hold)
