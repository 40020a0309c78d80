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


def holds_expired_events(hold_ids: Sequence[UUID]) -> list[outbox.NewEvent]:
    """The `hold.expired` events of the holds the posting engine just released for their expiry, for the
    engine to write with the rest of its posting's events."""
    holds = list(Hold.objects.filter(pk__in=hold_ids).order_by("expires_at", "pk"))
    return [
        outbox.event(EventType.HOLD_EXPIRED, user_id=hold.owner_id, data=data)
        for hold, data in zip(holds, holds_representation(holds), strict=True)
    ]
