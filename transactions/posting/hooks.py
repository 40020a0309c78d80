"""What a posting does besides its rows: the hook inside its transaction, and the audit line after it.

`OnPosted` runs inside the posting's database transaction, after its balances
and entries are written, with every entry (none for a hold's reservation or
release): what must commit with the money or not at all (a hold's row, the
idempotency record, a staff-action row). A service's callers give an
`OnBooked`, with the entry they get back (`first_entry`). A `Rider` is a
write decided from the entries that costs no statement of its own: it rides
in the statement that inserts them (a payment's pending cashback). `audit`
runs after the commit and the release of the locks, so that the next movement
of the same balances does not wait for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from uuid import UUID

from events.outbox import NewEvent
from transactions.holds.events import holds_expired_events
from transactions.models import Transaction
from wallet_project.money import format_amount
from wallets.selectors import minor_unit_of

audit_logger = logging.getLogger("wallet.audit")

OnBooked = Callable[[Transaction], None]
OnPosted = Callable[[Sequence[Transaction]], None]


class Rider(Protocol):
    """A write that commits with a posting's entries, decided from them, in the statement that inserts them.

    On PostgreSQL `statement(entries)` is a data-modifying statement (and its
    parameters) that becomes one more `WITH` of the entries' INSERT: no
    statement and no round trip of its own. It returns at most one row, of one
    column named `result`, which the INSERT's `RETURNING` brings back and
    `written` receives (None: no row), inside the transaction and before
    `on_posted`, or after the commit when the posting has no `on_posted`. A
    rider whose statement returns a row per movement of a posting of several
    (`many`) gets their `result`s as one JSON array instead. On SQLite
    (development mode) `orm(entries)` does the same write through the ORM
    after the INSERT and returns that result.
    """

    many: bool

    def statement(self, entries: Sequence[Transaction]) -> tuple[str, list[Any]]: ...

    def orm(self, entries: Sequence[Transaction]) -> Any: ...

    def written(self, entries: Sequence[Transaction], result: Any) -> None: ...


def first_entry(on_booked: OnBooked | None) -> OnPosted | None:
    """The engine's hook that hands a caller's `on_booked` the posting's first entry (the one it answers with)."""
    if on_booked is None:
        return None
    return lambda entries: on_booked(entries[0])


def holds_expired(hold_ids: Sequence[UUID]) -> list[NewEvent]:
    """The events of the holds the engine just released for their expiry (`hold.expired`), which it writes with
    its posting's other events."""
    return holds_expired_events(hold_ids) if hold_ids else []


def audit(entries: Sequence[Transaction], posting: UUID | None = None) -> None:
    """One audit line per posting, after its commit, with every entry it wrote (none: nothing moved).

    `reference` is the first entry's; `posting`, the posting's own reference (a batch's id). When its entries
    carry their movements' own references (a batch, a round of cashback), each entry says its own.
    """
    if not entries:
        return
    first = entries[0]
    reference = str(first.reference)
    posting = first.reference if posting is None else posting
    # By identity, not value (UUID's comparisons are Python code): the engine gives every entry without a
    # reference of its own the posting's very object; at worst an equal one is written out once more.
    own_references = False
    for entry in entries:
        if entry.reference is not posting:
            own_references = True
            break
    audit_logger.info(
        "money movement",
        extra={
            "reference": reference,
            "posting": reference if posting is first.reference else str(posting),
            "type": first.type,
            "source": first.source,
            "created_by": str(first.created_by_id) if first.created_by_id else None,
            "entries": [_audited(entry, own_references) for entry in entries],
        },
    )


def _audited(entry: Transaction, with_reference: bool) -> dict[str, Any]:
    audited = {
        "entry_id": str(entry.pk),
        "type": entry.type,
        "wallet_balance_id": str(entry.wallet_balance_id),
        "amount": format_amount(entry.amount, minor_unit_of(entry.currency_id)),
        "currency": entry.currency_id,
        "balance_after": format_amount(entry.balance_after, minor_unit_of(entry.currency_id)),
        "sequence": entry.sequence,
    }
    if with_reference:
        audited["reference"] = str(entry.reference)
    return audited
