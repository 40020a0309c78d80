"""Writing events: in the transaction of the change they describe, each numbered in its stream without a gap.

One statement per call: the streams' counters are upserted (in sorted id
order, so that two transactions never wait for each other's counters in
opposite orders) and the events inserted with the numbers they returned. The
counter rows stay locked until the transaction ends, so a stream's numbers
are taken in commit order, and a rolled-back change gives its number back:
no event without its change, no gap in a stream.

`movement_prefix` is a movement's events as the `WITH` of the statement that
inserts its entries (a data-modifying CTE: no extra statement, no extra round
trip); `record` writes one event of any other type.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from events.models import STAFF_STREAM, Event, EventStream, EventType
from wallet_project.ids import uuid7

# (stream, user, type, reference, data) of one event.
_NewEvent = tuple[UUID, UUID | None, str, UUID | None, dict[str, Any] | None]

_STREAMS = EventStream._meta.db_table
_EVENTS = Event._meta.db_table

# Built from the models' own table names and %s placeholders only: no input reaches the SQL text.
_NUMBERED = (
    "numbered AS ("  # noqa: S608
    f" INSERT INTO {_STREAMS} AS stream (id, last_sequence) VALUES {{streams}}"
    " ON CONFLICT (id) DO UPDATE SET last_sequence = stream.last_sequence + 1"
    " RETURNING id, last_sequence)"
)
_INSERT_EVENTS = (
    f"INSERT INTO {_EVENTS} (id, stream_id, user_id, sequence, type, reference, data, created_at)"  # noqa: S608
    " SELECT new.id, new.stream_id, new.user_id, numbered.last_sequence, new.type, new.reference, new.data,"
    " clock_timestamp()"
    " FROM (VALUES {events}) AS new (id, stream_id, user_id, type, reference, data)"
    " JOIN numbered ON numbered.id = new.stream_id"
)
_STREAM_ROW = "(%s::uuid, 1)"
_EVENT_ROW = "(%s::uuid, %s::uuid, %s::uuid, %s, %s::uuid, %s::jsonb)"


def movement_prefix(reference: UUID, owner_ids: Iterable[UUID]) -> tuple[str, list[Any]]:
    """A movement's `movement.created` events, one for each owner of its balances, as the `WITH …` that the
    statement inserting its entries starts with, and its parameters (which come first)."""
    events = _sorted([(owner, owner, EventType.MOVEMENT_CREATED, reference, None) for owner in set(owner_ids)])
    numbered, told, params = _parts(events)
    return f"WITH {numbered}, told AS ({told} RETURNING 1) ", params


def record(type_: EventType, *, user_id: UUID | None, data: dict[str, Any]) -> None:
    """Write one event with its object (`data`, as the API renders it) for `user_id`, or for staff (None).

    Call it inside the transaction of the change it tells."""
    stream_id = STAFF_STREAM if user_id is None else user_id
    if connection.vendor != "postgresql":
        record_orm([(stream_id, user_id, type_, None, data)])
        return
    sql, params = _statement([(stream_id, user_id, type_, None, data)])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def movement_orm(reference: UUID, owner_ids: Iterable[UUID]) -> None:
    """`movement_statement`, for SQLite (single-process development mode)."""
    record_orm([(owner_id, owner_id, EventType.MOVEMENT_CREATED, reference, None) for owner_id in set(owner_ids)])


def record_orm(events: Sequence[_NewEvent]) -> None:
    """The events through the ORM, for SQLite (single-process development mode, one writer at a time)."""
    for stream_id, user_id, type_, reference, data in sorted(events, key=lambda event: event[0]):
        stream, _ = EventStream.objects.get_or_create(id=stream_id)
        stream.last_sequence += 1
        stream.save(update_fields=["last_sequence"])
        Event.objects.create(
            stream_id=stream_id,
            user_id=user_id,
            sequence=stream.last_sequence,
            type=str(type_),
            reference=reference,
            data=data,
        )


def _statement(events: Sequence[_NewEvent]) -> tuple[str, list[Any]]:
    """One statement for events of distinct streams."""
    numbered, insert, params = _parts(_sorted(events))
    return f"WITH {numbered} {insert}", params


def _sorted(events: Sequence[_NewEvent]) -> list[_NewEvent]:
    # The counters are locked in the order of their rows in VALUES: sorted, so that two transactions
    # never wait for each other's in opposite orders.
    return sorted(events, key=lambda event: event[0])


def _parts(events: Sequence[_NewEvent]) -> tuple[str, str, list[Any]]:
    """The counters' upsert (a CTE named `numbered`), the events' INSERT from it, and their parameters."""
    params: list[Any] = [stream_id for stream_id, *_ in events]
    for stream_id, user_id, type_, reference, data in events:
        params += [uuid7(), stream_id, user_id, str(type_), reference, None if data is None else _json(data)]
    numbered, insert = _sql(len(events))
    return numbered, insert, params


@functools.cache
def _sql(count: int) -> tuple[str, str]:
    """The two parts' text for `count` events (a movement has one or two: built once each)."""
    numbered = _NUMBERED.format(streams=", ".join([_STREAM_ROW] * count))
    insert = _INSERT_EVENTS.format(events=", ".join([_EVENT_ROW] * count))
    return numbered, insert


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder)
