"""PostgreSQL array literals, written by hand, for the array parameters of a large posting.

A posting of many entries (a batch of movements, a round of cashback) sends
each column as one array parameter (`unnest(%s::uuid[], …)`): the driver's
parsing of a statement grows with its placeholders. psycopg's list dumper
then checks and escapes every element in Python, about a quarter of the
Python time of a batch of 100 transfers. `literal` writes the column as one
array literal instead, which the statement's cast reads (`%s::uuid[]`):
still one bound parameter, never SQL text. `tests/test_pg_arrays.py` reads
each kind of value back through PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

# Written as they are: their text has no comma, brace, quote, backslash or space.
_BARE = frozenset({UUID, Decimal, int})


def _quoted(text: str) -> str:
    # Inside double quotes a backslash escapes any character; nothing else is special.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _element(value: object) -> str:
    if value is None:
        return "NULL"
    if type(value) in _BARE:
        return str(value)
    if isinstance(value, (datetime, date)):
        return _quoted(value.isoformat())
    return _quoted(str(value))


def literal(values: Iterable[object]) -> str:
    """The array literal of `values`: uuids, decimals and integers as they are, None as NULL, anything else (text,
    datetimes, enums) quoted."""
    return "{" + ",".join([_element(value) for value in values]) + "}"


def bare(values: Iterable[Decimal | int | None]) -> str:
    """`literal` of a column known to hold only decimals or integers (and None): no look at each type."""
    return "{" + ",".join(["NULL" if value is None else str(value) for value in values]) + "}"


def uuids(values: Iterable[UUID | None]) -> str:
    """`literal` of a column known to hold only uuids (and None), as the 32 hex digits PostgreSQL also reads:
    without `UUID.__str__`'s call and hyphens, a third of the time."""
    return "{" + ",".join(["NULL" if value is None else "%032x" % value.int for value in values]) + "}"  # noqa: UP031


def texts(values: Iterable[str | None]) -> str:
    """`literal` of a column known to hold only text (and None)."""
    return "{" + ",".join(["NULL" if value is None else _quoted(value) for value in values]) + "}"
