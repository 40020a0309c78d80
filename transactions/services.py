"""Every money movement, through one road (DESIGN.md, "One road for money").

1. Validate before any lock: amount, visibility (404), currency precision,
   destination, rate.
2. Take the Redis locks of every balance touched, in sorted id order, within
   one bounded wait (`wallets.locks.balance_locks`).
3. `transaction.atomic(durable=True)`; `SELECT ... FOR NO KEY UPDATE` of the
   same balances in the same order: the row lock is the fence if a Redis lock
   ever expires under a slow worker.
4. Check the rules on the locked rows (frozen, funds, refundable), update the
   balances, insert the ledger entries with `balance_after` and `sequence`,
   and store the idempotency answer, all in that one transaction.
5. Commit, then release the locks.

Nothing else in the code base writes a balance amount or a ledger entry.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Sum

from transactions.models import CREDIT_TYPES, Transaction, TransactionSource, TransactionType
from wallet_project.db import ClockTimestamp
from wallet_project.errors import (
    AmountTooSmall,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    NotRefundable,
    RateUnavailable,
    RefundExceedsPayment,
    SameBalance,
    WalletFrozen,
)
from wallet_project.money import (
    AMOUNT_DECIMAL_PLACES,
    EXACT,
    MAX_BALANCE,
    check_precision,
    convert,
    format_amount,
    round_down,
)
from wallets.locks import balance_locks
from wallets.models import WalletBalance
from wallets.selectors import minor_unit_of

if TYPE_CHECKING:
    from accounts.models import User

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
           owner.is_active AS owner_is_active{rate}
    FROM wallets_walletbalance balance
    JOIN wallets_currency currency ON currency.code = balance.currency_id
    JOIN wallets_wallet wallet ON wallet.id = balance.wallet_id
    JOIN accounts_user owner ON owner.id = wallet.owner_id
    WHERE balance.id IN ({ids})
    ORDER BY balance.id{lock}
"""
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
    (docs/PERFORMANCE.md).
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
    rate_to_other: Decimal | None = None


def _balances(balance_ids: Sequence[UUID], *, lock: bool = False, with_rate: bool = False) -> dict[UUID, BalanceRow]:
    """The balances with what the rules need, in one statement; with `lock`, `FOR NO KEY UPDATE` of the
    balance rows in id order. Ids that do not exist are missing from the answer."""
    sqlite = connection.vendor == "sqlite"  # single-process development mode: ids are stored as hex
    ids = [balance_id.hex if sqlite else balance_id for balance_id in balance_ids]
    placeholders = ", ".join(["%s"] * len(ids))
    sql = _BALANCE_ROWS.format(
        ids=placeholders,
        rate=_RATE_TO_OTHER.format(ids=placeholders) if with_rate else "",
        lock=" FOR NO KEY UPDATE OF balance" if lock and not sqlite else "",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*ids, *ids] if with_rate else ids)
        rows = cursor.fetchall()
    if sqlite:
        rows = [_from_sqlite(row) for row in rows]
    return {row[0]: BalanceRow(*row) for row in rows}


_STORED_QUANTUM = Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)


def _from_sqlite(row: tuple) -> tuple:
    """SQLite returns ids as hex text, amounts and rates as floats or text, booleans as integers."""
    pk, wallet_id, currency_id, amount, last_sequence, minor_unit, owner_id, is_frozen, active, *rate = row
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
        *[None if value is None else Decimal(str(value)) for value in rate],
    )


def _visible_balance(*, balance_id: UUID, owner: User | None) -> BalanceRow:
    """The balance, if `owner` is None (staff and system) or owns it and is active; else NotFound."""
    balance_id = UUID(str(balance_id))  # callers outside the API may pass the id as text
    balance = _balances([balance_id]).get(balance_id)
    if balance is None or not _is_visible(balance, owner):
        raise NotFound("No such wallet balance.")
    return balance


def _is_visible(balance: BalanceRow, owner: User | None) -> bool:
    return owner is None or (balance.owner_id == owner.pk and balance.owner_is_active)


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
) -> list[Transaction]:
    """Lock, check, write and commit the legs of one movement; returns the entries in leg order.

    `settle_under_lock`, if given, checks a rule that needs the locks and
    returns the final legs (same balances). `create_balance`, if given,
    inserts the (locked) balance of an opening deposit in the same database
    transaction, so a refused opening leaves no balance behind. Raises WalletFrozen,
    InsufficientFunds (and what `settle_under_lock` raises), LockTimeout,
    ServiceUnavailable.
    """
    reference = reference or uuid.uuid4()
    balance_ids = sorted({leg.balance_id for leg in legs})
    with balance_locks(balance_ids), transaction.atomic(durable=True):
        if create_balance is not None:
            create_balance()
        # Same order as the Redis locks: no deadlock between A→B and B→A.
        locked = _balances(balance_ids, lock=True)
        if len(locked) != len(balance_ids):  # it vanished between the look-up and the lock
            raise NotFound("No such wallet balance.")
        for balance in locked.values():
            if balance.is_frozen:
                raise WalletFrozen(f"Wallet {balance.wallet_id} is frozen; no money may move into or out of it.")
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
                Transaction(
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
        _write([locked[balance_id] for balance_id in balance_ids], entries)
        if on_booked is not None:
            on_booked(entries[0])
    # Committed and released: the audit line is written outside the locks, so
    # that the next movement of these balances does not wait for it.
    _audit(entries)
    return entries


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


def _write(balances: Sequence[BalanceRow], entries: Sequence[Transaction]) -> None:
    """One UPDATE of every balance of the movement, then one INSERT of all its entries.

    Plain SQL on PostgreSQL (the ORM's bulk_update and bulk_create took a third
    of a transfer's Python time), sent together in one pipeline: one round trip
    to the database for both, while the balances are locked (docs/PERFORMANCE.md).
    If the UPDATE fails, PostgreSQL skips the INSERT and the error is raised
    here, as Django's own. The entries get their `created_at` from the database.
    """
    if connection.vendor != "postgresql":  # single-process development mode (SQLite)
        for balance in balances:
            WalletBalance.objects.filter(pk=balance.pk).update(
                amount=balance.amount, last_sequence=balance.last_sequence, updated_at=ClockTimestamp()
            )
        Transaction.objects.bulk_create(entries)
        return
    with connection.cursor() as cursor:
        with connection.wrap_database_errors, connection.connection.pipeline():
            cursor.execute(
                _UPDATE_BALANCES.format(rows=", ".join([_BALANCE_ROW] * len(balances))),
                [value for balance in balances for value in (balance.pk, balance.amount, balance.last_sequence)],
            )
            cursor.execute(
                _INSERT_ENTRIES.format(rows=", ".join([_ENTRY_ROW] * len(entries))),
                [getattr(entry, field.attname) for entry in entries for field in _ENTRY_FIELDS],
            )
        # The pipeline's sync has brought both results back; the cursor holds the INSERT's.
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
) -> Transaction:
    """One entry on one balance (deposit, withdrawal, payment), validated before the locks."""
    balance = _visible_balance(balance_id=wallet_balance_id, owner=owner)
    check_precision(amount, balance.minor_unit, balance.currency_id)
    (entry,) = _book(
        legs=[_Leg(balance.pk, type_, amount)],
        source=source,
        description=description,
        merchant=merchant,
        created_by=created_by,
        on_booked=on_booked,
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
) -> Transaction:
    """Move money between two balances, converting at the current rate when their currencies differ;
    returns the TRANSFER_OUT entry.

    Raises NotFound, InvalidInput, SameBalance, RateUnavailable, AmountTooSmall, WalletFrozen,
    InsufficientFunds, LockTimeout, ServiceUnavailable.
    """
    from_wallet_balance_id = UUID(str(from_wallet_balance_id))
    to_wallet_balance_id = UUID(str(to_wallet_balance_id))
    # One statement reads both balances, who owns them, and the current rate
    # from each one's currency to the other's.
    found = _balances([from_wallet_balance_id, to_wallet_balance_id], with_rate=True)
    source_balance = found.get(from_wallet_balance_id)
    if source_balance is None or not _is_visible(source_balance, owner):
        raise NotFound("No such wallet balance.")
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
        rate = source_balance.rate_to_other
        if rate is None:
            raise RateUnavailable(
                f"There is no current exchange rate from {source_balance.currency_id} to {destination.currency_id}."
            )
        credit = round_down(convert(amount, rate), destination.minor_unit)
        if credit <= 0:
            raise AmountTooSmall(
                f"{format_amount(amount, source_balance.minor_unit)} {source_balance.currency_id} "
                f"converts to less than one minor unit of {destination.currency_id}.",
                details={"amount": [f"Converted at {rate.normalize():f}, it rounds down to zero."]},
            )
    entries = _book(
        legs=[
            _Leg(source_balance.pk, TransactionType.TRANSFER_OUT, amount, destination.pk, rate),
            _Leg(destination.pk, TransactionType.TRANSFER_IN, credit, source_balance.pk, rate),
        ],
        source=source,
        description=description,
        created_by=created_by,
        on_booked=on_booked,
    )
    return entries[0]


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
