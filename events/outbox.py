"""Writing events: in the transaction of the change they describe, each numbered in its stream without a gap.

One statement per call: the streams' counters are upserted (in sorted id
order, so that two transactions never wait for each other's counters in
opposite orders), each moved on by as many events as the call writes to its
stream, and the events inserted with the numbers that gives them. The
counter rows stay locked until the transaction ends, so a stream's numbers
are taken in commit order, and a rolled-back change gives its number back:
no event without its change, no gap in a stream.

`movements_prefix` is a posting's events as the `WITH` of the statement that
inserts its entries (a data-modifying CTE: no extra statement, no extra round
trip); `record` writes one event of any other type, `record_many` several.
"""

from __future__ import annotations

import json
from collections import Counter
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
# A stream's counter moves on by the number of its events here (`count`); its event `later` places
# before the last one gets the number that many below the counter's new value.
_NUMBERED = (
    "numbered AS ("  # noqa: S608
    f" INSERT INTO {_STREAMS} AS stream (id, last_sequence) VALUES {{streams}}"
    " ON CONFLICT (id) DO UPDATE SET last_sequence = stream.last_sequence + excluded.last_sequence"
    " RETURNING id, last_sequence)"
)
_INSERT_EVENTS = (
    f"INSERT INTO {_EVENTS} (id, stream_id, user_id, sequence, type, reference, data, created_at)"  # noqa: S608
    " SELECT new.id, new.stream_id, new.user_id, numbered.last_sequence - new.later, new.type, new.reference,"
    " new.data, clock_timestamp()"
    " FROM (VALUES {events}) AS new (id, stream_id, user_id, type, reference, data, later)"
    " JOIN numbered ON numbered.id = new.stream_id"
)
_STREAM_ROW = "(%s::uuid, %s::bigint)"
_EVENT_ROW = "(%s::uuid, %s::uuid, %s::uuid, %s, %s::uuid, %s::jsonb, %s::bigint)"


def movement_prefix(reference: UUID, owner_ids: Iterable[UUID]) -> tuple[str, list[Any]]:
    """A movement's `movement.created` events, one for each owner of its balances, as the `WITH …` that the
    statement inserting its entries starts with, and its parameters (which come first)."""
    return movements_prefix([(reference, owner) for owner in owner_ids])


def movements_prefix(told: Iterable[tuple[UUID, UUID]]) -> tuple[str, list[Any]]:
    """A posting's `movement.created` events, one for each distinct (reference, owner of a balance), as the
    `WITH …` that the statement inserting its entries starts with, and its parameters (which come first).

    A posting is one movement (one reference) but for the few that book the follow-ups of several at once,
    each leg under its own movement's reference (the cashback of many payments)."""
    distinct = list(dict.fromkeys(told))
    events = _sorted([(owner, owner, EventType.MOVEMENT_CREATED, reference, None) for reference, owner in distinct])
    numbered, insert, params = _parts(events)
    return f"WITH {numbered}, told AS ({insert} RETURNING 1) ", params


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


def record_many(events: Sequence[tuple[EventType, UUID | None, dict[str, Any]]]) -> None:
    """Write several events, each `(type, user_id, data)` as `record` takes them, in one statement.

    Call it inside the transaction of the changes they tell."""
    if not events:
        return
    rows = [
        (STAFF_STREAM if user_id is None else user_id, user_id, type_, None, data) for type_, user_id, data in events
    ]
    if connection.vendor != "postgresql":
        record_orm(rows)
        return
    sql, params = _statement(rows)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def movement_orm(reference: UUID, owner_ids: Iterable[UUID]) -> None:
    """`movement_prefix`, for SQLite (single-process development mode)."""
    movements_orm([(reference, owner_id) for owner_id in owner_ids])


def movements_orm(told: Iterable[tuple[UUID, UUID]]) -> None:
    """`movements_prefix`, for SQLite (single-process development mode)."""
    distinct = dict.fromkeys(told)
    record_orm([(owner, owner, EventType.MOVEMENT_CREATED, reference, None) for reference, owner in distinct])


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
    """One statement for the events, several of one stream included."""
    numbered, insert, params = _parts(_sorted(events))
    return f"WITH {numbered} {insert}", params


def _sorted(events: Sequence[_NewEvent]) -> list[_NewEvent]:
    # The counters are locked in the order of their rows in VALUES: sorted, so that two transactions
    # never wait for each other's in opposite orders. Stable: a stream's events keep their order.
    return sorted(events, key=lambda event: event[0])


def _parts(events: Sequence[_NewEvent]) -> tuple[str, str, list[Any]]:
    """The counters' upsert (a CTE named `numbered`), the events' INSERT from it, and their parameters.

    `events` are sorted by stream; each stream's counter moves on by its number of events, which are
    numbered in their order."""
    counts = Counter(stream_id for stream_id, *_ in events)
    params: list[Any] = [value for stream_id, count in counts.items() for value in (stream_id, count)]
    seen: Counter[UUID] = Counter()
    for stream_id, user_id, type_, reference, data in events:
        seen[stream_id] += 1
        later = counts[stream_id] - seen[stream_id]
        params += [uuid7(), stream_id, user_id, str(type_), reference, None if data is None else _json(data), later]
    numbered = _NUMBERED.format(streams=", ".join([_STREAM_ROW] * len(counts)))
    insert = _INSERT_EVENTS.format(events=", ".join([_EVENT_ROW] * len(events)))
    return numbered, insert, params


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder)
