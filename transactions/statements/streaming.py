"""A statement written out as it is read: the same road for every format.

The entries come from the database a chunk at a time (`statement_entries`),
each chunk is checked (`RunningCheck`) and only then handed to the format's
writer, whose bytes go to the client before the next chunk is read: a year of
a busy balance is never held in memory. A statement that does not add up is
logged as an error and its stream is aborted: the client gets a cut-off body
(no final chunk), never a statement that looks whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Protocol

from django.http import StreamingHttpResponse

from transactions.models import Transaction
from transactions.statements.checking import RunningCheck, StatementBroken, Totals
from transactions.statements.selectors import Statement, statement_entries
from wallet_project import worker_heartbeat

logger = logging.getLogger("wallet.statements")


class StatementWriter(Protocol):
    """One format of a statement: its bytes for the opening, each checked chunk of entries, and the end."""

    content_type: str
    extension: str
    attachment: bool

    def opening(self) -> Iterable[bytes]: ...

    def entries(self, entries: list[Transaction]) -> Iterable[bytes]: ...

    def closing(self, totals: Totals) -> Iterable[bytes]: ...


def statement_chunks(
    statement: Statement, writer: StatementWriter, *, request_id: str | None = None
) -> Iterator[bytes]:
    """The statement's bytes; raises StatementBroken (logged as an error) where its arithmetic fails."""
    check = RunningCheck(statement)
    try:
        yield from writer.opening()
        for chunk in statement_entries(statement):
            for entry in chunk:
                check.add(entry)
            yield from writer.entries(chunk)
            worker_heartbeat.beat()  # a long statement is progress, not a hung worker
        totals = check.close()
    except StatementBroken as exc:
        logger.error(
            "statement does not add up; its stream was aborted",
            extra={"balance_id": str(statement.balance.pk), "error": str(exc), "request_id": request_id},
        )
        raise
    yield from writer.closing(totals)


def statement_response(
    statement: Statement, writer: StatementWriter, *, request_id: str | None
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        statement_chunks(statement, writer, request_id=request_id), content_type=writer.content_type
    )
    if writer.attachment:
        name = f"statement-{statement.balance.pk}-{statement.start:%Y%m%dT%H%M%SZ}-{statement.end:%Y%m%dT%H%M%SZ}"
        response["Content-Disposition"] = f'attachment; filename="{name}.{writer.extension}"'
    return response
