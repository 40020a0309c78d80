"""The SQL of the posting engine: the balances read with what the rules need, and the writes.

Plain statements on PostgreSQL, built from the models' own table and column
names and `%s` placeholders only (no input reaches the SQL text), and the
ORM's equivalents for SQLite, the single-process development mode, which
stores ids as hex and has neither the triggers nor `FOR UPDATE`.
"""

from __future__ import annotations

import functools
import json
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from django.db import ProgrammingError, connection, router
from django.db.models import F, Min
from django.db.models.base import ModelState
from django.utils import timezone

from events import outbox
from transactions.models import Hold, HoldStatus, Transaction
from wallet_project import pg_arrays
from wallet_project.db import ClockTimestamp
from wallet_project.errors import InactiveAccount
from wallet_project.ids import uuid7
from wallet_project.money import AMOUNT_DECIMAL_PLACES
from wallets.models import WalletBalance

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from django.db.backends.utils import CursorWrapper

    from accounts.models import User
    from transactions.posting.hooks import Rider


_BALANCE_ROWS = """
    SELECT balance.id, balance.wallet_id, balance.currency_id, balance.amount, balance.last_sequence,
           currency.minor_unit AS minor_unit, wallet.owner_id AS owner_id, wallet.is_frozen AS is_frozen,
           owner.is_active AS owner_is_active, balance.held_amount, balance.hold_due_at,
           COALESCE(balance.hold_due_at <= {now}, FALSE) AS hold_due, {actor} AS actor_is_active{rate}
    FROM wallets_walletbalance balance
    JOIN wallets_currency currency ON currency.code = balance.currency_id
    JOIN wallets_wallet wallet ON wallet.id = balance.wallet_id
    JOIN accounts_user owner ON owner.id = wallet.owner_id
    WHERE balance.id IN ({ids})
    ORDER BY balance.id{lock}
"""
# Whether the user who asks for the movement is active, read with the balances: a deactivated
# account's unexpired token, or a deactivated staff member, moves nothing.
_ACTOR_IS_ACTIVE = "(SELECT actor.is_active FROM accounts_user actor WHERE actor.id = %s)"
# The current rate from this balance's currency to the other balance's (a transfer reads both at once).
_RATE_TO_OTHER = """,
           (SELECT rate.rate FROM wallets_exchangerate rate
            JOIN wallets_walletbalance other ON other.currency_id = rate.quote_id
            WHERE other.id IN ({ids}) AND other.id <> balance.id
              AND rate.base_id = balance.currency_id AND rate.valid_to IS NULL) AS rate_to_other"""
# More than two balances (a batch): the current rates between the currencies among them, as JSON text keyed by
# "BASE QUOTE" ({"USD EUR": "0.91"}; NULL when there is none), the same on every row: one uncorrelated subquery,
# computed once, which reads the balances' currencies once (a CTE named twice is computed once). Text, so that no
# rate is ever a float.
_RATES_TO_OTHERS = """,
           NULL AS rate_to_other,
           (WITH currency AS (SELECT DISTINCT other.currency_id AS code FROM wallets_walletbalance other
                              WHERE other.id IN ({ids}))
            SELECT {json_of_rates} FROM wallets_exchangerate rate
            WHERE rate.valid_to IS NULL
              AND rate.base_id IN (SELECT code FROM currency)
              AND rate.quote_id IN (SELECT code FROM currency)) AS rates"""
_JSON_OF_RATES = "json_object_agg(rate.base_id || ' ' || rate.quote_id, rate.rate::text)::text"
_SQLITE_JSON_OF_RATES = "json_group_object(rate.base_id || ' ' || rate.quote_id, CAST(rate.rate AS TEXT))"
# More balances than this (a batch) are named by one array parameter instead of one placeholder each: the
# driver's parsing of a statement grows with its placeholders.
BALANCES_AS_VALUES_AT_MOST = 8
_IDS_ARRAY = "SELECT unnest(%s::uuid[])"


@dataclass(slots=True)
class BalanceRow:
    """A balance as the money rules see it: the row, its currency's minor unit, its wallet's owner and state.

    Read by one plain statement (`read_balances`). Not a model instance: building
    those through a RawQuerySet was a fifth of a transfer's Python time
    (docs/PERFORMANCE.md, "Balances read in one plain statement").
    """

    pk: UUID
    wallet_id: UUID
    currency_id: str
    amount: Decimal
    last_sequence: int
    minor_unit: int
    owner_id: UUID
    is_frozen: bool
    owner_is_active: bool
    held_amount: Decimal  # what its active holds reserve, expired ones included until they are released
    hold_due_at: datetime | None  # never later than the earliest expiry of those holds
    hold_due: bool  # some hold may have expired: release before any rule reads `held_amount`
    actor_is_active: bool | None = None  # None: no actor was named (the system), or no such user
    rate_to_other: Decimal | None = None  # read with two balances
    # Read with more: the rates among their currencies, JSON text parsed on first use (`rate_to`).
    rates: str | dict[str, Decimal] | None = None
    holds_released: int = 0  # how many holds past their expiry this posting released (the sweeper's count)

    @property
    def available(self) -> Decimal:
        """What debits and new holds may use: the amount less what the holds reserve."""
        return self.amount - self.held_amount

    def rate_to(self, currency_id: str) -> Decimal | None:
        """The current rate from this balance's currency to `currency_id`, one of the other balances' read with
        it (`read_balances(with_rate=True)`); None when there is none."""
        if self.rates is None:
            return self.rate_to_other
        if isinstance(self.rates, str):
            self.rates = {pair: Decimal(rate) for pair, rate in json.loads(self.rates).items()}
        return self.rates.get(f"{self.currency_id} {currency_id}")


def read_balances(
    balance_ids: Sequence[UUID],
    *,
    lock: bool = False,
    with_rate: bool = False,
    actor: User | None = None,
    cursor: CursorWrapper | None = None,
) -> dict[UUID, BalanceRow]:
    """The balances with what the rules need, in one statement; with `lock`, `FOR NO KEY UPDATE` of the
    balance rows in id order. Ids that do not exist are missing from the answer. With `actor`, each
    row also says whether that user is active; with `with_rate`, the current rate from the row's
    currency to each other balance's (`BalanceRow.rate_to`). On `cursor` if given (the engine's, made
    before the locks), else on a cursor of its own.
    """
    sqlite = connection.vendor == "sqlite"  # single-process development mode: ids are stored as hex
    ids: list[Any] = [balance_id.hex if sqlite else balance_id for balance_id in balance_ids]
    if len(ids) > BALANCES_AS_VALUES_AT_MOST and not sqlite:
        placeholders, ids = _IDS_ARRAY, [pg_arrays.uuids(ids)]
    else:
        placeholders = ", ".join(["%s"] * len(ids))
    # A pair reads the rate to the other one; more read the rates among their currencies.
    rate = _RATE_TO_OTHER if len(balance_ids) <= 2 else _RATES_TO_OTHERS
    json_of_rates = _SQLITE_JSON_OF_RATES if sqlite else _JSON_OF_RATES
    sql = _BALANCE_ROWS.format(
        ids=placeholders,
        now=_SQLITE_NOW if sqlite else "clock_timestamp()",
        actor="NULL" if actor is None else _ACTOR_IS_ACTIVE,
        rate=rate.format(ids=placeholders, json_of_rates=json_of_rates) if with_rate else "",
        lock=" FOR NO KEY UPDATE OF balance" if lock and not sqlite else "",
    )
    params = [] if actor is None else [actor.pk.hex if sqlite else actor.pk]
    if with_rate:
        params += ids
    params += ids
    with connection.cursor() if cursor is None else nullcontext(cursor) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if sqlite:
        rows = [_from_sqlite(row) for row in rows]
    return {row[0]: BalanceRow(*row) for row in rows}


_STORED_QUANTUM = Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)
# Django stores datetimes in SQLite as ISO text in UTC, which compares as text with this.
_SQLITE_NOW = "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"


def _from_sqlite(row: tuple) -> tuple:
    """SQLite returns ids as hex text, amounts and rates as floats or text, booleans as integers."""
    (pk, wallet_id, currency_id, amount, last_sequence, minor_unit, owner_id, is_frozen, active,
     held, due_at, due, actor, *rate) = row  # fmt: skip
    rates = rate[1:]  # more than two balances: no rate to "the other", and the rates' JSON text
    rate = rate[:1]
    return (
        UUID(pk),
        UUID(wallet_id),
        currency_id,
        _stored_decimal(amount),
        last_sequence,
        minor_unit,
        UUID(owner_id),
        bool(is_frozen),
        bool(active),
        _stored_decimal(held),
        _stored_datetime(due_at),
        bool(due),
        None if actor is None else bool(actor),
        *[None if value is None else Decimal(str(value)) for value in rate],
        *rates,
    )


def _stored_datetime(value: datetime | str | None) -> datetime | None:
    """SQLite gives a datetime column back as a naive datetime (or its text) in UTC."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC)


def _stored_decimal(value: object) -> Decimal:
    return Decimal(str(value)).quantize(_STORED_QUANTUM)  # as Django's own converter does


_CREATED_AT = Transaction._meta.get_field("created_at")
_CREATED_BY = Transaction._meta.get_field("created_by")


def new_entry(*, created_by: User | None, **values: Any) -> Transaction:
    """A new, unsaved ledger entry, as `Transaction(**values, created_by=created_by)` builds it.

    Without `Model.__init__`'s walk over every field and its `pre_init` and
    `post_init` signals (the model has no receivers of either): the two
    entries of a transfer were a twentieth of its Python time
    (docs/PERFORMANCE.md, "Ledger entries built without Model.__init__").
    `values` gives every other field by its attname,
    except `id` (a new UUID, the field's default) and `created_at` (the
    database's, `db_default`). `transactions/tests/test_services.py` compares
    the two ways field by field.
    """
    entry = Transaction.__new__(Transaction)
    entry._state = ModelState()
    entry.__dict__.update(
        values,
        id=uuid7(),
        created_at=_CREATED_AT.get_default(),
        created_by_id=None if created_by is None else created_by.pk,
    )
    if created_by is not None:  # what the foreign key's descriptor does when given the user
        entry._state.db = router.db_for_write(Transaction, instance=created_by)
        _CREATED_BY.set_cached_value(entry, created_by)
    return entry


_ENTRY_FIELDS = [
    field
    for field in Transaction._meta.concrete_fields
    if field.name != "created_at"  # clock_timestamp(), by the database, after the row lock
]
# Built from the models' own table and column names and %s placeholders only: no input reaches the SQL text.
_INSERT_ENTRIES = "INSERT INTO {table} ({columns}) {rows} RETURNING id, created_at{rider}".format(
    table=Transaction._meta.db_table,
    columns=", ".join(field.column for field in _ENTRY_FIELDS),
    rows="{rows}",
    rider="{rider}",
)
# A posting of more entries than this (a batch of cashback) sends them as one array per column: the
# driver's parsing of the statement grows with its placeholders, and took a third of a batch's Python time.
ENTRIES_AS_VALUES_AT_MOST = 8
# A rider's statement, as the last `WITH` of the entries' INSERT, and its one row brought back with each entry.
_RIDER = ", rider AS ({statement}) "
_RIDER_RESULT = ", (SELECT rider.result FROM rider)"
_RIDER_RESULTS = ", (SELECT json_agg(rider.result) FROM rider)"  # uncorrelated: computed once, not per entry
_ENTRY_ROW = "(" + ", ".join(["%s"] * len(_ENTRY_FIELDS)) + ")"


def _array_of(field: Any) -> Callable[[list[Any]], str]:
    """How a column of entries is written as an array literal: uuids, numbers, text, or each value looked at."""
    kind = (field.target_field if field.is_relation else field).get_internal_type()
    if kind == "UUIDField":
        return pg_arrays.uuids
    if kind in {"DecimalField", "BigIntegerField", "IntegerField"}:
        return pg_arrays.bare
    if kind == "CharField":
        return pg_arrays.texts
    return pg_arrays.literal


_ENTRY_ARRAYS = [(field.attname, _array_of(field)) for field in _ENTRY_FIELDS]


@functools.cache
def _entry_arrays() -> str:
    """`SELECT * FROM unnest(%s::uuid[], …)`: the entries as one array per column, each cast to its column's type."""
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in _ENTRY_FIELDS)
    return f"SELECT * FROM unnest({arrays})"  # noqa: S608 - the model's own column types


def _entry_rows(entries: Sequence[Transaction]) -> tuple[str, list[Any]]:
    """The entries' rows for `_INSERT_ENTRIES`, and their parameters: VALUES, or arrays for a large posting."""
    if len(entries) <= ENTRIES_AS_VALUES_AT_MOST:
        values = [getattr(entry, field.attname) for entry in entries for field in _ENTRY_FIELDS]
        return "VALUES " + ", ".join([_ENTRY_ROW] * len(entries)), values
    # Each entry's own values, as `new_entry` set them: without the foreign keys' descriptors.
    values = [entry.__dict__ for entry in entries]
    return _entry_arrays(), [array([value[name] for value in values]) for name, array in _ENTRY_ARRAYS]


_UPDATE_BALANCES = (
    f"UPDATE {WalletBalance._meta.db_table} AS balance"  # noqa: S608
    " SET amount = moved.amount, last_sequence = moved.last_sequence, held_amount = moved.held_amount,"
    " hold_due_at = moved.hold_due_at, updated_at = clock_timestamp()"
    " FROM (VALUES {rows}) AS moved (id, amount, last_sequence, held_amount, hold_due_at)"
    " WHERE balance.id = moved.id"
)
_BALANCE_ROW = "(%s::uuid, %s::numeric, %s::bigint, %s::numeric, %s::timestamptz)"
# More balances than BALANCES_AS_VALUES_AT_MOST (a batch): one array per column.
_BALANCE_ARRAYS = "SELECT * FROM unnest(%s::uuid[], %s::numeric[], %s::bigint[], %s::numeric[], %s::timestamptz[])"
_UPDATE_BALANCE_ARRAYS = _UPDATE_BALANCES.replace("(VALUES {rows})", f"({_BALANCE_ARRAYS})")


def _balance_update(balances: Sequence[BalanceRow]) -> tuple[str, list[Any]]:
    """The UPDATE of the balances a posting moved, and its parameters: VALUES, or arrays for many balances."""
    if len(balances) > BALANCES_AS_VALUES_AT_MOST:
        return _UPDATE_BALANCE_ARRAYS, [
            pg_arrays.uuids([balance.pk for balance in balances]),
            pg_arrays.bare([balance.amount for balance in balances]),
            pg_arrays.bare([balance.last_sequence for balance in balances]),
            pg_arrays.bare([balance.held_amount for balance in balances]),
            pg_arrays.literal([balance.hold_due_at for balance in balances]),
        ]
    return _UPDATE_BALANCES.format(rows=", ".join([_BALANCE_ROW] * len(balances))), [
        value
        for balance in balances
        for value in (balance.pk, balance.amount, balance.last_sequence, balance.held_amount, balance.hold_due_at)
    ]


def _moved_first(update: str, statement: str) -> str:
    """`statement` (a `WITH …` of its own) with the balances' `update` as its first part."""
    assert statement.startswith("WITH ")
    return f"WITH balances AS ({update}), {statement.removeprefix('WITH ')}"


def write(
    balances: Sequence[BalanceRow],
    entries: Sequence[Transaction],
    cursor: CursorWrapper,
    events: Sequence[outbox.NewEvent] = (),
    rider: Rider | None = None,
) -> None:
    """One statement: the INSERT of all the movement's entries, whose `WITH` updates every balance of the
    movement first, then writes its `movement.created` events (the outbox, `events.outbox`) after `events`,
    what the posting did first (holds released for their expiry) or decided to tell, and the `rider`'s
    statement, if any. Without entries, the UPDATE rides in the events' statement, or goes alone.

    Plain SQL on PostgreSQL (the ORM's bulk_update and bulk_create took a third
    of a transfer's Python time), in one statement: one round trip, one plan
    started, while the balances are locked (docs/PERFORMANCE.md, "Balance UPDATE
    and ledger INSERT in one statement"). The parts of a `WITH` share one
    snapshot; none of them reads what another writes, and the ledger's insert
    guard, which reads the balances, runs once the statement is done. An error
    in any part is raised here, as Django's own, and nothing of it is written.
    The entries get their `created_at` from the database: the INSERT's
    `RETURNING` stays on `cursor` for `read_created_at`, which the engine calls
    after the commit and the release when it can.
    """
    if connection.vendor != "postgresql":  # single-process development mode (SQLite)
        for balance in balances:
            WalletBalance.objects.filter(pk=balance.pk).update(
                amount=balance.amount,
                last_sequence=balance.last_sequence,
                held_amount=balance.held_amount,
                hold_due_at=balance.hold_due_at,
                updated_at=ClockTimestamp(),
            )
        Transaction.objects.bulk_create(entries)
        if entries:
            outbox.movements_orm([(entry.reference, entry.owner_id) for entry in entries], events)
            if rider is not None:
                rider.written(entries, rider.orm(entries))
        else:
            outbox.record_orm(events)
        return
    update, update_params = _balance_update(balances)
    try:
        if entries:
            # The movement's events ride in the entries' INSERT, as its WITH: one per owner of its balances
            # (and per reference, when its legs carry their own).
            told, params = outbox.movements_prefix([(entry.reference, entry.owner_id) for entry in entries], events)
            rides = ""
            if rider is not None:
                statement, rider_params = rider.statement(entries)
                told += _RIDER.format(statement=statement)
                params += rider_params
                rides = _RIDER_RESULTS if rider.many else _RIDER_RESULT
            rows, values = _entry_rows(entries)
            insert = told + _INSERT_ENTRIES.format(rows=rows, rider=rides)
            cursor.execute(_moved_first(update, insert), update_params + params + values)
        elif events:
            statement, params = outbox.statement(events)
            cursor.execute(_moved_first(update, statement), update_params + params)
        else:
            cursor.execute(update, update_params)
    except ProgrammingError as exc:
        # The ledger's trigger: the actor was deactivated after the locked read saw it active.
        if isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
            raise InactiveAccount() from exc
        raise


def read_created_at(cursor: CursorWrapper, entries: Sequence[Transaction], rider: Rider | None = None) -> None:
    """Give the entries `write` inserted their `created_at`, from the INSERT's `RETURNING` on `cursor`, and
    the `rider` what its statement returned.

    The statement brought the rows back before the commit; reading them
    is Python's work only, so the engine does it once the locks are released.
    """
    if connection.vendor != "postgresql" or not entries:  # bulk_create has set them already, or nothing to read
        return
    returned = cursor.fetchall()
    created = dict(returned) if rider is None else {row[0]: row[1] for row in returned}
    for entry in entries:
        entry.created_at = created[entry.pk]
        entry._state.adding = False
        entry._state.db = connection.alias
    if rider is not None:
        rider.written(entries, returned[0][2])


# The holds of these balances past their expiry become `expired` (resolved at their expiry: the moment they
# stopped reserving), and each balance gets what they released, how many they were, and its next due time. One
# moment for both parts: with two readings of the clock a hold expiring between them would be neither released
# nor due.
_RELEASE_DUE = """
    WITH moment AS (SELECT clock_timestamp() AS now),
    expired AS (
        UPDATE {holds} AS hold SET status = %s, resolved_at = hold.expires_at
        FROM moment
        WHERE hold.wallet_balance_id IN ({ids}) AND hold.status = %s AND hold.expires_at <= moment.now
        RETURNING hold.id, hold.wallet_balance_id, hold.amount - hold.captured_amount AS released
    )
    SELECT balance.id,
           COALESCE((SELECT sum(expired.released) FROM expired WHERE expired.wallet_balance_id = balance.id), 0),
           ARRAY(SELECT expired.id FROM expired WHERE expired.wallet_balance_id = balance.id),
           (SELECT min(hold.expires_at) FROM {holds} AS hold, moment
            WHERE hold.wallet_balance_id = balance.id AND hold.status = %s AND hold.expires_at > moment.now)
    FROM {balances} AS balance
    WHERE balance.id IN ({ids})
"""


def release_expired_holds(balances: Sequence[BalanceRow], cursor: CursorWrapper) -> list[UUID]:
    """Mark the holds of these (locked) balances that are past their expiry `expired`, and take what they
    reserved off each row's `held_amount`; each row's `hold_due_at` becomes its next expiry, and its
    `holds_released` how many it released. The rows are written with the movement's own UPDATE. Returns the
    ids of the holds it marked.
    """
    if connection.vendor != "postgresql":
        released = _release_expired_holds_orm(balances)
    else:
        placeholders = ", ".join(["%s"] * len(balances))
        sql = _RELEASE_DUE.format(holds=Hold._meta.db_table, balances=WalletBalance._meta.db_table, ids=placeholders)
        ids = [balance.pk for balance in balances]
        cursor.execute(sql, [HoldStatus.EXPIRED, *ids, HoldStatus.ACTIVE, HoldStatus.ACTIVE, *ids])
        released = {
            balance_id: (amount, hold_ids, due_at) for balance_id, amount, hold_ids, due_at in cursor.fetchall()
        }
    expired: list[UUID] = []
    for balance in balances:
        amount, hold_ids, due_at = released[balance.pk]
        balance.held_amount -= amount
        balance.holds_released = len(hold_ids)
        balance.hold_due_at = due_at
        balance.hold_due = False
        expired += hold_ids
    return expired


def _release_expired_holds_orm(
    balances: Sequence[BalanceRow],
) -> dict[UUID, tuple[Decimal, list[UUID], datetime | None]]:
    """`release_expired_holds`'s statement, for SQLite (single-process development mode)."""
    now = timezone.now()
    released = {}
    for balance in balances:
        active = Hold.objects.filter(wallet_balance_id=balance.pk, status=HoldStatus.ACTIVE)
        expired = list(active.filter(expires_at__lte=now))
        amount = sum((hold.amount - hold.captured_amount for hold in expired), Decimal(0))
        Hold.objects.filter(pk__in=[hold.pk for hold in expired]).update(
            status=HoldStatus.EXPIRED, resolved_at=F("expires_at")
        )
        due_at = active.aggregate(due_at=Min("expires_at"))["due_at"]
        released[balance.pk] = (amount, [hold.pk for hold in expired], due_at)
    return released
