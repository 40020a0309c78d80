"""Small database helpers shared by the apps."""

from __future__ import annotations

from django.db import models


class ClockTimestamp(models.Func):
    """PostgreSQL's `clock_timestamp()`: the time of the statement itself, not of the transaction's start.

    Ledger timestamps are taken after the row lock, so that history order and
    chain order agree (DESIGN.md). SQLite (development mode) has one writer at a
    time, so its current time serves.
    """

    template = "clock_timestamp()"
    output_field = models.DateTimeField()

    def as_sqlite(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        return "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')", []
