"""Every money movement, through one road (DESIGN.md, "One road for money").

1. Validate before any lock: amount, visibility (404), currency precision,
   destination, rate. When this process already knows the facts a movement
   needs (`BalanceFacts`: wallet, owner, currency and minor unit, which do not
   change once a balance exists, kept while the owner is active) and no rate
   is needed, it validates from them and skips the pre-lock read: one round
   trip and one statement fewer per movement. A refusal is never decided from
   those facts (the fresh read decides it), and step 4 checks them again on
   the locked rows.
2. Take the Redis locks of every balance touched, in sorted id order, within
   one bounded wait (`wallets.locks.balance_locks`). A movement served by the
   API's fast path passes its throttle's count (`admission`) along, and the
   same Redis call makes the count first: over the limit, no lock is taken
   and the movement is refused (429).
3. `transaction.atomic(durable=True)`; `SELECT ... FOR NO KEY UPDATE` of the
   same balances in the same order: the row lock is the fence if a Redis lock
   ever expires under a slow worker.
4. Check the rules on the locked rows (the known facts step 1 used still
   hold, else step 1 again from a fresh read; frozen, funds, refundable),
   update the balances, insert the ledger entries with `balance_after` and
   `sequence`, and store the idempotency answer, all in that one transaction.
5. Commit, then release the locks.

Nothing else in the code base writes a balance amount or a ledger entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import psycopg
from django.db import ProgrammingError, connection, router, transaction
from django.db.models import Sum
from django.db.models.base import ModelState

from transactions.models import CREDIT_TYPES, Transaction, TransactionSource, TransactionType
from wallet_project.db import ClockTimestamp
from wallet_project.errors import (
    AmountTooSmall,
    DomainError,
    InactiveAccount,
    InsufficientFunds,
    InvalidInput,
    LockTimeout,
    NotFound,
    NotRefundable,
    RateUnavailable,
    RefundExceedsPayment,
    SameBalance,
    ServiceUnavailable,
    WalletFrozen,
)
from wallet_project.ids import uuid7
from wallet_project.money import (
    AMOUNT_DECIMAL_PLACES,
    EXACT,
    MAX_BALANCE,
    check_precision,
    convert,
    format_amount,
    format_rate,
    round_down,
)
from wallets.locks import balance_locks
from wallets.models import WalletBalance
from wallets.selectors import minor_unit_of

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

    from accounts.models import User
    from wallet_project.throttling import Admission

audit_logger = logging.getLogger("wallet.audit")

# Called inside the movement's database transaction, after its entries are
# written, with the entry the caller gets back (the idempotency record).
OnBooked = Callable[[Transaction], None]


@dataclass(frozen=True)
class _Leg:
    balance_id: UUID
    type: TransactionType
    amount: Decimal
    related_balance_id: UUID | None = None
    exchange_rate: Decimal | None = None


# --- validation before the locks -------------------------------------------------------


_BALANCE_ROWS = """
    SELECT balance.id, balance.wallet_id, balance.currency_id, balance.amount, balance.last_sequence,
           currency.minor_unit AS minor_unit, wallet.owner_id AS owner_id, wallet.is_frozen AS is_frozen,
           owner.is_active AS owner_is_active, {actor} AS actor_is_active{rate}
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


@dataclass(slots=True)
class BalanceRow:
    """A balance as the money rules see it: the row, its currency's minor unit, its wallet's owner and state.

    Read by one plain statement (`_balances`). Not a model instance: building
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
    actor_is_active: bool | None = None  # None: no actor was named (the system), or no such user
    rate_to_other: Decimal | None = None


def _balances(
    balance_ids: Sequence[UUID],
    *,
    lock: bool = False,
    with_rate: bool = False,
    remember: bool = True,
    actor: User | None = None,
    cursor: CursorWrapper | None = None,
) -> dict[UUID, BalanceRow]:
    """The balances with what the rules need, in one statement; with `lock`, `FOR NO KEY UPDATE` of the
    balance rows in id order. Ids that do not exist are missing from the answer. With `actor`, each
    row also says whether that user is active (`_ensure_actor_active`); with `with_rate`, the current
    rate from the row's currency to the other balance's.

    With `remember`, the facts of the rows read are kept for the next movement (`_remember`).
    On `cursor` if given (`_book`'s, made before the locks), else on a cursor of its own.
    """
    sqlite = connection.vendor == "sqlite"  # single-process development mode: ids are stored as hex
    ids = [balance_id.hex if sqlite else balance_id for balance_id in balance_ids]
    placeholders = ", ".join(["%s"] * len(ids))
    sql = _BALANCE_ROWS.format(
        ids=placeholders,
        actor="NULL" if actor is None else _ACTOR_IS_ACTIVE,
        rate=_RATE_TO_OTHER.format(ids=placeholders) if with_rate else "",
        lock=" FOR NO KEY UPDATE OF balance" if lock and not sqlite else "",
    )
    params = [] if actor is None else [actor.pk.hex if sqlite else actor.pk]
    params += [*ids, *ids] if with_rate else ids
    with connection.cursor() if cursor is None else nullcontext(cursor) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if sqlite:
        rows = [_from_sqlite(row) for row in rows]
    balances = {row[0]: BalanceRow(*row) for row in rows}
    if remember:
        _remember(balances.values())
    return balances


_STORED_QUANTUM = Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)


def _from_sqlite(row: tuple) -> tuple:
    """SQLite returns ids as hex text, amounts and rates as floats or text, booleans as integers."""
    pk, wallet_id, currency_id, amount, last_sequence, minor_unit, owner_id, is_frozen, active, actor, *rate = row
    return (
        UUID(pk),
        UUID(wallet_id),
        currency_id,
        Decimal(str(amount)).quantize(_STORED_QUANTUM),  # as Django's own converter does
        last_sequence,
        minor_unit,
        UUID(owner_id),
        bool(is_frozen),
        bool(active),
        None if actor is None else bool(actor),
        *[None if value is None else Decimal(str(value)) for value in rate],
    )


@dataclass(frozen=True, slots=True)
class BalanceFacts:
    """What never changes once a balance exists: enough to validate a movement on it before the locks.

    Never its amount or its wallet's state: those are read under the lock only.
    """

    pk: UUID
    wallet_id: UUID
    currency_id: str
    minor_unit: int
    owner_id: UUID
    # Facts are kept only while the owner is active; `_book` checks it again on the locked row.
    owner_is_active: ClassVar[bool] = True

    @classmethod
    def of(cls, balance: BalanceRow) -> BalanceFacts:
        return cls(balance.pk, balance.wallet_id, balance.currency_id, balance.minor_unit, balance.owner_id)


# The facts of the balances this process has read lately, oldest first. No lock: each step is one
# dict operation under the GIL, and none of them raises when another thread got there first.
_BALANCE_FACTS_MAX = 2_048
_balance_facts: dict[UUID, BalanceFacts] = {}


def _remember(balances: Iterable[BalanceRow]) -> None:
    """Keep the facts of these balances, or forget them where the owner is not active; when full, drop the oldest."""
    for balance in balances:
        if not balance.owner_is_active:
            _balance_facts.pop(balance.pk, None)
            continue
        while len(_balance_facts) >= _BALANCE_FACTS_MAX and balance.pk not in _balance_facts:
            try:
                _balance_facts.pop(next(iter(_balance_facts)), None)
            except (StopIteration, RuntimeError):  # another thread emptied or changed it meanwhile
                break
        _balance_facts[balance.pk] = BalanceFacts.of(balance)


def _known_facts(balance_ids: Sequence[UUID]) -> dict[UUID, BalanceFacts] | None:
    """The facts of every one of these balances, if all are known and share one currency; else None.

    Two currencies mean a conversion, and the current rate is never kept: it needs the fresh read.
    """
    known = {}
    for balance_id in balance_ids:
        facts = _balance_facts.get(balance_id)
        if facts is None:
            return None
        known[balance_id] = facts
    if len({facts.currency_id for facts in known.values()}) > 1:
        return None
    return known


def _facts_hold(locked: Mapping[UUID, BalanceRow], validated: Mapping[UUID, BalanceFacts]) -> bool:
    """Whether the locked rows still show the facts a movement was validated from, with their owners active."""
    return all(
        balance.owner_is_active and BalanceFacts.of(balance) == validated[balance_id]
        for balance_id, balance in locked.items()
    )


def _visible_balance(
    found: Mapping[UUID, BalanceRow | BalanceFacts], balance_id: UUID, owner: User | None
) -> BalanceRow | BalanceFacts:
    """The balance, if `owner` is None (staff and system) or owns it and is active; else NotFound."""
    balance = found.get(balance_id)
    if balance is None or not _is_visible(balance, owner):
        raise NotFound("No such wallet balance.")
    return balance


def _is_visible(balance: BalanceRow | BalanceFacts, owner: User | None) -> bool:
    return owner is None or (balance.owner_id == owner.pk and balance.owner_is_active)


def _ensure_actor_active(balances: Mapping[UUID, BalanceRow], actor: User | None) -> None:
    """Refuse a movement asked by a deactivated (or deleted) user: the same rule wherever the balances are read."""
    if actor is not None and balances and not next(iter(balances.values())).actor_is_active:
        raise InactiveAccount()


class _FactsChanged(Exception):
    """Under the lock, a balance no longer shows the facts its movement was validated from."""


# Validates a movement on its balances (a fresh read, or the known facts) and returns its legs.
_Plan = Callable[[Mapping[UUID, BalanceRow | BalanceFacts]], Sequence[_Leg]]


def _validated_and_booked(
    balance_ids: Sequence[UUID], plan: _Plan, *, with_rate: bool = False, **booking: Any
) -> list[Transaction]:
    """Validate a movement with `plan`, then book its legs (`_book(**booking)`).

    When every balance's facts are known and no rate is needed, `plan` runs
    on them and the pre-lock read is skipped: `_book` reads the same rows
    under the lock anyway, and checks there that the facts still hold. A
    refusal is never decided from the known facts: when `plan` refuses on
    them, when they no longer hold under the lock, or when the locks cannot
    be had (so that a 404 of the fresh read still comes before a 429), the
    fresh read decides (docs/PERFORMANCE.md, "Known balance facts skip the
    pre-lock read"). Legs converted at a rate are planned again on
    the locked rows, with the rate read under the locks: a rate replaced
    while the movement waited for a busy balance is never booked.
    """
    actor = booking["created_by"]

    def fresh_plan() -> Sequence[_Leg]:
        fresh = _balances(balance_ids, with_rate=with_rate, actor=actor)
        _ensure_actor_active(fresh, actor)
        return plan(fresh)

    known = _known_facts(balance_ids)
    if known is not None:
        try:
            legs = plan(known)
        except DomainError:
            pass  # decided below, from the fresh read
        else:
            try:
                return _book(legs=legs, validated_facts=known, **booking)
            except _FactsChanged:
                pass  # nothing was written; decided below, from the fresh read
            except (LockTimeout, ServiceUnavailable):
                fresh_plan()
                raise
    legs = fresh_plan()
    if any(leg.exchange_rate is not None for leg in legs):
        return _book(legs=legs, settle_under_lock=plan, with_rate=True, **booking)
    return _book(legs=legs, **booking)


# --- the booking itself ------------------------------------------------------------------


def _book(
    *,
    legs: Sequence[_Leg],
    source: str,
    description: str,
    merchant: str = "",
    created_by: User | None,
    reference: UUID | None = None,
    settle_under_lock: Callable[[dict[UUID, BalanceRow]], Sequence[_Leg]] | None = None,
    create_balance: Callable[[], object] | None = None,
    on_booked: OnBooked | None = None,
    validated_facts: Mapping[UUID, BalanceFacts] | None = None,
    admission: Admission | None = None,
    with_rate: bool = False,
) -> list[Transaction]:
    """Lock, check, write and commit the legs of one movement; returns the entries in leg order.

    `settle_under_lock`, if given, checks a rule that needs the locks and
    returns the final legs (same balances); with `with_rate` the locked rows
    carry the current rate between their currencies, read under the locks.
    The locked read also says whether `created_by` is still active: a
    deactivated actor moves nothing (InactiveAccount). `create_balance`, if given,
    inserts the (locked) balance of an opening deposit in the same database
    transaction, so a refused opening leaves no balance behind.
    `validated_facts`, if given, are the known facts the legs were validated
    from instead of a fresh read: the locked rows must still show them, with
    their owners active, or nothing is written and `_FactsChanged` is raised
    (before any other rule, so refusals come in the fresh read's order).
    `admission`, if given and not yet counted, is the request's throttle
    count, made by the locks' acquire before it takes them
    (`wallets.locks.balance_locks`). Raises WalletFrozen, InsufficientFunds
    (and what `settle_under_lock` raises), LockTimeout, ServiceUnavailable,
    and the admission's `Throttled`.
    """
    reference = reference or uuid7()
    balance_ids = sorted({leg.balance_id for leg in legs})
    # One cursor for the locked read and the writes, made before the locks are taken and read again
    # after they are released: what the locks hold is the rhythm of a busy balance
    # (docs/PERFORMANCE.md, "One cursor, made before the locks").
    with connection.cursor() as cursor:
        with balance_locks(balance_ids, admission), transaction.atomic(durable=True):
            if create_balance is not None:
                create_balance()
            # Same order as the Redis locks: no deadlock between A→B and B→A.
            # An opening's own new row is not a fact until the commit: it is not remembered.
            locked = _balances(
                balance_ids,
                lock=True,
                remember=create_balance is None,
                actor=created_by,
                with_rate=with_rate,
                cursor=cursor,
            )
            _ensure_actor_active(locked, created_by)
            if len(locked) != len(balance_ids):  # it vanished between the look-up and the lock
                raise NotFound("No such wallet balance.")
            if validated_facts is not None and not _facts_hold(locked, validated_facts):
                raise _FactsChanged()
            _ensure_not_frozen(locked, legs, created_by)
            if settle_under_lock is not None:
                legs = settle_under_lock(locked)

            entries = []
            for leg in legs:
                balance = locked[leg.balance_id]
                # Computed from the locked row, never from a value read before the lock.
                if leg.type in CREDIT_TYPES:
                    new_amount = EXACT.add(balance.amount, leg.amount)
                    if new_amount > MAX_BALANCE:
                        raise InvalidInput(
                            "The balance would exceed the largest amount it can hold.",
                            details={"amount": ["The balance would exceed the largest amount it can hold."]},
                        )
                else:
                    new_amount = EXACT.subtract(balance.amount, leg.amount)
                    if new_amount < 0:
                        minor_unit = balance.minor_unit
                        raise InsufficientFunds(
                            f"Balance {balance.pk} holds {format_amount(balance.amount, minor_unit)} "
                            f"{balance.currency_id}; {format_amount(leg.amount, minor_unit)} "
                            f"{balance.currency_id} was asked.",
                            details={
                                "wallet_balance_id": str(balance.pk),
                                "available": format_amount(balance.amount, minor_unit),
                                "requested": format_amount(leg.amount, minor_unit),
                                "currency": balance.currency_id,
                            },
                        )
                balance.amount = new_amount
                balance.last_sequence += 1
                entries.append(
                    _new_entry(
                        wallet_balance_id=balance.pk,
                        wallet_id=balance.wallet_id,
                        owner_id=balance.owner_id,
                        currency_id=balance.currency_id,
                        type=leg.type,
                        amount=leg.amount,
                        balance_after=new_amount,
                        sequence=balance.last_sequence,
                        related_wallet_balance_id=leg.related_balance_id,
                        exchange_rate=leg.exchange_rate,
                        reference=reference,
                        source=source,
                        description=description,
                        merchant=merchant,
                        created_by=created_by,
                    )
                )
            _write([locked[balance_id] for balance_id in balance_ids], entries, cursor)
            if on_booked is not None:
                _read_created_at(cursor, entries)
                on_booked(entries[0])
        if on_booked is None:
            _read_created_at(cursor, entries)
    # Committed and released: the audit line is written outside the locks, so
    # that the next movement of these balances does not wait for it.
    _audit(entries)
    return entries


def _ensure_not_frozen(locked: Mapping[UUID, BalanceRow], legs: Sequence[_Leg], actor: User | None) -> None:
    """Refuse a movement into or out of a frozen wallet (WalletFrozen).

    A transfer's sender learns only that the destination cannot receive: not
    its wallet's id, nor why, when that wallet is someone else's.
    """
    for leg in legs:
        balance = locked[leg.balance_id]
        if not balance.is_frozen:
            continue
        if leg.type == TransactionType.TRANSFER_IN and (actor is None or balance.owner_id != actor.pk):
            raise WalletFrozen("The destination balance cannot receive money.")
        raise WalletFrozen(f"Wallet {balance.wallet_id} is frozen; no money may move into or out of it.")


_CREATED_AT = Transaction._meta.get_field("created_at")
_CREATED_BY = Transaction._meta.get_field("created_by")


def _new_entry(*, created_by: User | None, **values: Any) -> Transaction:
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
_INSERT_ENTRIES = "INSERT INTO {table} ({columns}) VALUES {rows} RETURNING id, created_at".format(  # noqa: S608
    table=Transaction._meta.db_table,
    columns=", ".join(field.column for field in _ENTRY_FIELDS),
    rows="{rows}",
)
_ENTRY_ROW = "(" + ", ".join(["%s"] * len(_ENTRY_FIELDS)) + ")"
_UPDATE_BALANCES = (
    f"UPDATE {WalletBalance._meta.db_table} AS balance"  # noqa: S608
    " SET amount = moved.amount, last_sequence = moved.last_sequence, updated_at = clock_timestamp()"
    " FROM (VALUES {rows}) AS moved (id, amount, last_sequence) WHERE balance.id = moved.id"
)
_BALANCE_ROW = "(%s::uuid, %s::numeric, %s::bigint)"


def _write(balances: Sequence[BalanceRow], entries: Sequence[Transaction], cursor: CursorWrapper) -> None:
    """One UPDATE of every balance of the movement, then one INSERT of all its entries.

    Plain SQL on PostgreSQL (the ORM's bulk_update and bulk_create took a third
    of a transfer's Python time), sent together in one pipeline: one round trip
    to the database for both, while the balances are locked (docs/PERFORMANCE.md,
    "Balance UPDATE and ledger INSERT in one pipeline").
    If the UPDATE fails, PostgreSQL skips the INSERT and the error is raised
    here, as Django's own. The entries get their `created_at` from the database:
    the INSERT's `RETURNING` stays on `cursor` for `_read_created_at`, which
    `_book` calls after the commit and the release when it can.
    """
    if connection.vendor != "postgresql":  # single-process development mode (SQLite)
        for balance in balances:
            WalletBalance.objects.filter(pk=balance.pk).update(
                amount=balance.amount, last_sequence=balance.last_sequence, updated_at=ClockTimestamp()
            )
        Transaction.objects.bulk_create(entries)
        return
    try:
        with connection.wrap_database_errors, connection.connection.pipeline():
            cursor.execute(
                _UPDATE_BALANCES.format(rows=", ".join([_BALANCE_ROW] * len(balances))),
                [value for balance in balances for value in (balance.pk, balance.amount, balance.last_sequence)],
            )
            cursor.execute(
                _INSERT_ENTRIES.format(rows=", ".join([_ENTRY_ROW] * len(entries))),
                [getattr(entry, field.attname) for entry in entries for field in _ENTRY_FIELDS],
            )
    except ProgrammingError as exc:
        # The ledger's trigger: the actor was deactivated after the locked read saw it active.
        if isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
            raise InactiveAccount() from exc
        raise


def _read_created_at(cursor: CursorWrapper, entries: Sequence[Transaction]) -> None:
    """Give the entries `_write` inserted their `created_at`, from the INSERT's `RETURNING` on `cursor`.

    The pipeline's sync brought the rows back before the commit; reading them
    is Python's work only, so `_book` does it once the locks are released.
    """
    if connection.vendor != "postgresql":  # bulk_create has set them already
        return
    created = dict(cursor.fetchall())
    for entry in entries:
        entry.created_at = created[entry.pk]
        entry._state.adding = False
        entry._state.db = connection.alias


def _audit(entries: Sequence[Transaction]) -> None:
    """One audit line per money movement, after its commit, with every entry it wrote."""
    first = entries[0]
    audit_logger.info(
        "money movement",
        extra={
            "reference": str(first.reference),
            "type": first.type,
            "source": first.source,
            "created_by": str(first.created_by_id) if first.created_by_id else None,
            "entries": [
                {
                    "entry_id": str(entry.pk),
                    "type": entry.type,
                    "wallet_balance_id": str(entry.wallet_balance_id),
                    "amount": format_amount(entry.amount, minor_unit_of(entry.currency_id)),
                    "currency": entry.currency_id,
                    "balance_after": format_amount(entry.balance_after, minor_unit_of(entry.currency_id)),
                    "sequence": entry.sequence,
                }
                for entry in entries
            ],
        },
    )


# --- the movements -----------------------------------------------------------------------


def _single_balance_movement(
    type_: TransactionType,
    *,
    wallet_balance_id: UUID,
    amount: Decimal,
    owner: User | None,
    created_by: User | None,
    source: str,
    description: str,
    merchant: str = "",
    on_booked: OnBooked | None,
    admission: Admission | None,
) -> Transaction:
    """One entry on one balance (deposit, withdrawal, payment), validated before the locks
    (from the known facts of the balance when there are, `_validated_and_booked`)."""
    balance_id = UUID(str(wallet_balance_id))  # callers outside the API may pass the id as text

    def plan(found: Mapping[UUID, BalanceRow | BalanceFacts]) -> list[_Leg]:
        balance = _visible_balance(found, balance_id, owner)
        check_precision(amount, balance.minor_unit, balance.currency_id)
        return [_Leg(balance.pk, type_, amount)]

    (entry,) = _validated_and_booked(
        [balance_id],
        plan,
        source=source,
        description=description,
        merchant=merchant,
        created_by=created_by,
        on_booked=on_booked,
        admission=admission,
    )
    return entry


def deposit_create(
    *,
    wallet_balance_id: UUID,
    amount: Decimal,
    owner: User | None,
    created_by: User | None,
    source: str = TransactionSource.API,
    description: str = "",
    on_booked: OnBooked | None = None,
    admission: Admission | None = None,
) -> Transaction:
    """Credit a balance. Raises NotFound, InvalidInput, WalletFrozen, LockTimeout, ServiceUnavailable."""
    return _single_balance_movement(
        TransactionType.DEPOSIT,
        wallet_balance_id=wallet_balance_id,
        amount=amount,
        owner=owner,
        created_by=created_by,
        source=source,
        description=description,
        on_booked=on_booked,
        admission=admission,
    )


def opening_deposit_create(
    *,
    balance: WalletBalance,
    amount: Decimal,
    created_by: User | None,
    source: str = TransactionSource.API,
) -> Transaction:
    """Insert a new (unsaved) balance and book its opening DEPOSIT in one database transaction.

    Raises InvalidInput, WalletFrozen, LockTimeout, ServiceUnavailable, and IntegrityError when
    the wallet already holds that currency.
    """
    check_precision(amount, balance.currency.minor_unit, balance.currency_id)
    (entry,) = _book(
        legs=[_Leg(balance.pk, TransactionType.DEPOSIT, amount)],
        source=source,
        description="Opening deposit",
        created_by=created_by,
        create_balance=balance.save,
    )
    return entry


def withdrawal_create(
    *,
    wallet_balance_id: UUID,
    amount: Decimal,
    owner: User | None,
    created_by: User | None,
    source: str = TransactionSource.API,
    description: str = "",
    on_booked: OnBooked | None = None,
    admission: Admission | None = None,
) -> Transaction:
    """Debit a balance. Raises NotFound, InvalidInput, WalletFrozen, InsufficientFunds, LockTimeout,
    ServiceUnavailable."""
    return _single_balance_movement(
        TransactionType.WITHDRAWAL,
        wallet_balance_id=wallet_balance_id,
        amount=amount,
        owner=owner,
        created_by=created_by,
        source=source,
        description=description,
        on_booked=on_booked,
        admission=admission,
    )


def payment_create(
    *,
    wallet_balance_id: UUID,
    amount: Decimal,
    merchant: str,
    owner: User | None,
    created_by: User | None,
    source: str = TransactionSource.API,
    description: str = "",
    on_booked: OnBooked | None = None,
    admission: Admission | None = None,
) -> Transaction:
    """Pay a merchant from a balance. Raises NotFound, InvalidInput, WalletFrozen, InsufficientFunds,
    LockTimeout, ServiceUnavailable."""
    return _single_balance_movement(
        TransactionType.PAYMENT,
        wallet_balance_id=wallet_balance_id,
        amount=amount,
        owner=owner,
        created_by=created_by,
        source=source,
        description=description,
        merchant=merchant,
        on_booked=on_booked,
        admission=admission,
    )


def transfer_create(
    *,
    from_wallet_balance_id: UUID,
    to_wallet_balance_id: UUID,
    amount: Decimal,
    owner: User | None,
    created_by: User | None,
    source: str = TransactionSource.API,
    description: str = "",
    on_booked: OnBooked | None = None,
    admission: Admission | None = None,
) -> Transaction:
    """Move money between two balances, converting at the current rate when their currencies differ;
    returns the TRANSFER_OUT entry. Validated before the locks, from the known facts of both balances
    when there are and they share one currency (`_validated_and_booked`).

    Raises NotFound, InvalidInput, SameBalance, RateUnavailable, AmountTooSmall, WalletFrozen,
    InsufficientFunds, LockTimeout, ServiceUnavailable.
    """
    from_wallet_balance_id = UUID(str(from_wallet_balance_id))
    to_wallet_balance_id = UUID(str(to_wallet_balance_id))

    def plan(found: Mapping[UUID, BalanceRow | BalanceFacts]) -> list[_Leg]:
        source_balance = _visible_balance(found, from_wallet_balance_id, owner)
        check_precision(amount, source_balance.minor_unit, source_balance.currency_id)
        # The destination may be anyone's (API.md); it only has to exist.
        destination = found.get(to_wallet_balance_id)
        if destination is None:
            raise NotFound("No such wallet balance.")
        if destination.pk == source_balance.pk:
            raise SameBalance()

        if destination.currency_id == source_balance.currency_id:
            rate = None
            credit = amount
        else:
            # Only a fresh read (a BalanceRow, with the rate) gets here: known facts serve one currency only.
            rate = source_balance.rate_to_other
            if rate is None:
                raise RateUnavailable(
                    f"There is no current exchange rate from {source_balance.currency_id} to {destination.currency_id}."
                )
            credit = transfer_credit(amount=amount, rate=rate, minor_unit=destination.minor_unit)
            if credit <= 0:
                raise AmountTooSmall(
                    f"{format_amount(amount, source_balance.minor_unit)} {source_balance.currency_id} "
                    f"converts to less than one minor unit of {destination.currency_id}.",
                    details={"amount": [f"Converted at {format_rate(rate)}, it rounds down to zero."]},
                )
        return [
            _Leg(source_balance.pk, TransactionType.TRANSFER_OUT, amount, destination.pk, rate),
            _Leg(destination.pk, TransactionType.TRANSFER_IN, credit, source_balance.pk, rate),
        ]

    # The fresh read is one statement: both balances, who owns them, and the
    # current rate from each one's currency to the other's.
    entries = _validated_and_booked(
        [from_wallet_balance_id, to_wallet_balance_id],
        plan,
        with_rate=True,
        source=source,
        description=description,
        created_by=created_by,
        on_booked=on_booked,
        admission=admission,
    )
    return entries[0]


def transfer_credit(*, amount: Decimal, rate: Decimal, minor_unit: int) -> Decimal:
    """What a transfer of `amount` credits at `rate`: the product, rounded down to the destination's minor unit."""
    return round_down(convert(amount, rate), minor_unit)


def refunded_amount(*, payment: Transaction) -> Decimal:
    """What has been refunded of a payment so far (its REFUND entries share its reference)."""
    total = Transaction.objects.filter(
        reference=payment.reference, wallet_balance_id=payment.wallet_balance_id, type=TransactionType.REFUND
    ).aggregate(total=Sum("amount"))["total"]
    return total or Decimal(0)


def refund_create(
    *,
    payment_id: UUID,
    amount: Decimal | None,
    created_by: User | None,
    source: str = TransactionSource.API,
    description: str = "",
    on_booked: OnBooked | None = None,
) -> Transaction:
    """Refund a payment, in full by default or in part, onto the balance that paid it.

    Raises NotFound, InvalidInput, NotRefundable, RefundExceedsPayment, WalletFrozen, LockTimeout,
    ServiceUnavailable.
    """
    payment = Transaction.objects.select_related("currency").filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("No such transaction.")
    if amount is not None:
        check_precision(amount, payment.currency.minor_unit, payment.currency_id)
    if payment.type != TransactionType.PAYMENT:
        raise NotRefundable(f"Only payments can be refunded; this is a {payment.type}.")

    minor_unit = payment.currency.minor_unit

    def settle_refund(locked: dict[UUID, BalanceRow]) -> list[_Leg]:
        # Under the balance's locks, so that two refunds cannot both take the last of a payment.
        left = payment.amount - refunded_amount(payment=payment)
        asked = left if amount is None else amount
        if left <= 0 or asked > left:
            raise RefundExceedsPayment(
                f"{format_amount(left, minor_unit)} {payment.currency_id} is left to refund of this payment; "
                f"{format_amount(asked, minor_unit)} was asked.",
                details={
                    "refundable": format_amount(left, minor_unit),
                    "requested": format_amount(asked, minor_unit),
                },
            )
        return [_Leg(payment.wallet_balance_id, TransactionType.REFUND, asked)]

    (entry,) = _book(
        # The amount is settled under the lock by settle_refund.
        legs=[_Leg(payment.wallet_balance_id, TransactionType.REFUND, amount or payment.amount)],
        source=source,
        description=description or f"Refund of payment {payment.pk}",
        merchant=payment.merchant,
        created_by=created_by,
        reference=payment.reference,
        settle_under_lock=settle_refund,
        on_booked=on_booked,
    )
    return entry
