"""Writing events: in the transaction of the change they describe, each numbered in its stream without a gap.

One statement per call: the streams' counters are upserted (in sorted id
order, so that two transactions never wait for each other's counters in
opposite orders) and the events inserted with the numbers they returned. The
counter rows stay locked until the transaction ends, so a stream's numbers
are taken in commit order, and a rolled-back change gives its number back:
no event without its change, no gap in a stream.

`movements_prefix` is a posting's movement events as the `WITH` of the statement
that inserts its entries (a data-modifying CTE: no extra statement, no extra round
trip); `record` and `record_all` write other events. All the events of one
statement lock their streams' counters in sorted order; a transaction that
writes events of several streams does it in one statement (a posting's
released holds ride with its movement's events), so no two transactions take
two counters in opposite orders.
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
from wallet_project.pg_arrays import bare, texts, uuids

# One event to write: its stream, user (None for staff), type, the movement's reference or its object.
NewEvent = tuple[UUID, UUID | None, str, UUID | None, dict[str, Any] | None]

_STREAMS = EventStream._meta.db_table
_EVENTS = Event._meta.db_table

# Built from the models' own table names and %s placeholders only: no input reaches the SQL text.
# Each stream's counter moves on by its number of events; an event's number counts back from the new last.
_NUMBERED = (
    "numbered AS ("  # noqa: S608
    f" INSERT INTO {_STREAMS} AS stream (id, last_sequence) VALUES {{streams}}"
    " ON CONFLICT (id) DO UPDATE SET last_sequence = stream.last_sequence + EXCLUDED.last_sequence"
    " RETURNING id, last_sequence)"
)
_INSERT_EVENTS = (
    f"INSERT INTO {_EVENTS} (id, stream_id, user_id, sequence, type, reference, data, created_at)"  # noqa: S608
    " SELECT new.id, new.stream_id, new.user_id, numbered.last_sequence - new.from_last, new.type, new.reference,"
    " new.data, clock_timestamp()"
    " FROM (VALUES {events}) AS new (id, stream_id, user_id, type, reference, data, from_last)"
    " JOIN numbered ON numbered.id = new.stream_id"
)
_STREAM_ROW = "(%s::uuid, %s::bigint)"
_EVENT_ROW = "(%s::uuid, %s::uuid, %s::uuid, %s, %s::uuid, %s::jsonb, %s::bigint)"
# More events than this (a batch of movements) go as one array per column: the driver's parsing of a statement
# grows with its placeholders. The streams' rows stay in sorted order.
EVENTS_AS_VALUES_AT_MOST = 8
_NUMBERED_ARRAYS = _NUMBERED.replace(
    "VALUES {streams}", "SELECT * FROM unnest(%s::uuid[], %s::bigint[]) AS counted (id, events) ORDER BY id"
)
_INSERT_EVENT_ARRAYS = _INSERT_EVENTS.replace(
    "(VALUES {events})",
    "unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::text[], %s::uuid[], %s::jsonb[], %s::bigint[])",
)


def event(type_: EventType, *, user_id: UUID | None, data: dict[str, Any]) -> NewEvent:
    """An event with its object (`data`, as the API renders it) for `user_id`, or for staff (None)."""
    return (STAFF_STREAM if user_id is None else user_id, user_id, type_, None, data)


def movements_prefix(told: Iterable[tuple[UUID, UUID]], before: Sequence[NewEvent] = ()) -> tuple[str, list[Any]]:
    """A posting's `movement.created` events, one for each distinct (reference, owner of a balance) in `told`
    (a leg may carry its own movement's reference: the cashback of a batch of payments), after the events
    `before` (what the same posting did first: holds released for their expiry), as the `WITH …` that the
    statement inserting its entries starts with, and its parameters (which come first)."""
    numbered, insert, params = _parts([*before, *_moved(told)])
    return f"WITH {numbered}, told AS ({insert} RETURNING 1) ", params


def _moved(told: Iterable[tuple[UUID, UUID]]) -> list[NewEvent]:
    return [(owner, owner, EventType.MOVEMENT_CREATED, reference, None) for reference, owner in dict.fromkeys(told)]


def record(type_: EventType, *, user_id: UUID | None, data: dict[str, Any]) -> None:
    """Write one event with its object for `user_id`, or for staff (None), in the caller's transaction."""
    record_all([event(type_, user_id=user_id, data=data)])


def record_all(events: Sequence[NewEvent]) -> None:
    """Write these events in one statement, in the caller's transaction."""
    if not events:
        return
    if connection.vendor != "postgresql":
        record_orm(events)
        return
    with connection.cursor() as cursor:
        cursor.execute(*statement(events))


def statement(events: Sequence[NewEvent]) -> tuple[str, list[Any]]:
    """The one statement that writes these events, and its parameters."""
    numbered, insert, params = _parts(events)
    return f"WITH {numbered} {insert}", params


def movements_orm(told: Iterable[tuple[UUID, UUID]], before: Sequence[NewEvent] = ()) -> None:
    """`movements_prefix`'s events, for SQLite (single-process development mode)."""
    record_orm([*before, *_moved(told)])


def record_orm(events: Sequence[NewEvent]) -> None:
    """The events through the ORM, for SQLite (single-process development mode, one writer at a time)."""
    for stream_id, user_id, type_, reference, data in events:
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


def _parts(events: Sequence[NewEvent]) -> tuple[str, str, list[Any]]:
    """The counters' upsert (a CTE named `numbered`), the events' INSERT from it, and their parameters.

    The counters are locked in the order of their rows (VALUES, or the arrays' ORDER BY for many events):
    sorted, so that two transactions never wait for each other's in opposite orders. A stream's events keep
    the order they are given in.
    """
    counts: dict[UUID, int] = {}
    for stream_id, *_ in events:
        counts[stream_id] = counts.get(stream_id, 0) + 1
    streams = sorted(counts)
    left = dict(counts)
    rows = []
    for stream_id, user_id, type_, reference, data in events:
        left[stream_id] -= 1
        rows.append(
            (uuid7(), stream_id, user_id, str(type_), reference, None if data is None else _json(data), left[stream_id])
        )
    if len(events) > EVENTS_AS_VALUES_AT_MOST:
        return _NUMBERED_ARRAYS, _INSERT_EVENT_ARRAYS, _arrays(streams, counts, rows)
    params: list[Any] = [value for stream_id in streams for value in (stream_id, counts[stream_id])]
    for row in rows:
        params += row
    numbered, insert = _sql(len(streams), len(events))
    return numbered, insert, params


def _arrays(streams: list[UUID], counts: dict[UUID, int], rows: list[tuple]) -> list[str]:
    """The parameters of `_NUMBERED_ARRAYS` and `_INSERT_EVENT_ARRAYS`: one array literal per column."""
    ids, stream_ids, user_ids, types, references, data, from_last = zip(*rows, strict=True)
    return [
        uuids(streams),
        bare([counts[stream_id] for stream_id in streams]),
        uuids(ids),
        uuids(stream_ids),
        uuids(user_ids),
        texts(types),
        uuids(references),
        texts(data),
        bare(from_last),
    ]


@functools.cache
def _sql(streams: int, events: int) -> tuple[str, str]:
    """The two parts' text for so many streams and events (a movement has one or two: built once each)."""
    numbered = _NUMBERED.format(streams=", ".join([_STREAM_ROW] * streams))
    insert = _INSERT_EVENTS.format(events=", ".join([_EVENT_ROW] * events))
    return numbered, insert


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder)
