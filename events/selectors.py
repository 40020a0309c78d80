"""Reads of the events: a user's feed, and one event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from django.db.models import Q

from events.models import Event
from wallet_project.errors import InvalidInput, NotFound
from wallet_project.replicas.reads import recheck_on_primary

if TYPE_CHECKING:
    from accounts.models import User


def event_feed(*, user: User, after: UUID | None, types: Sequence[str], limit: int) -> list[Event]:
    """Up to `limit` of the user's events, oldest first, after the event `after` (one of theirs).

    `types` are exact types or prefixes (`movement.*`); none means all.
    """
    events = Event.objects.filter(stream_id=user.pk)
    if after is not None:
        position = events.filter(pk=after).values_list("sequence", flat=True).first()
        if position is None:
            recheck_on_primary()  # a replica may not have replayed that event yet: the primary decides
            message = "No event of yours has this id; use an id from this feed."
            raise InvalidInput(message, details={"after": [message]})
        events = events.filter(sequence__gt=position)
    if types:
        wanted = Q()
        for kind in types:
            wanted |= Q(type__startswith=kind[:-1]) if kind.endswith(".*") else Q(type=kind)
        events = events.filter(wanted)
    return list(events.order_by("sequence")[:limit])


def event_get(*, user: User, event_id: UUID) -> Event:
    """One of the user's events; raises NotFound."""
    event = Event.objects.filter(stream_id=user.pk, pk=event_id).first()
    if event is None:
        raise NotFound("No such event.")
    return event
