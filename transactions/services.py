"""Every money movement, each a short function that describes it to the posting engine.

A movement validates its input before any lock (amount precision, which
balances the caller may see, the destination, the rate) in a `Plan` that
turns the balances into legs, and hands it to `planning.plan_and_post`, which
runs the one road: locks, row locks, checks, writes, commit, release
(`transactions/posting/engine.py`). Nothing else in the code base writes a
balance amount or a ledger entry.

The API's callers are the owners of the balances they debit (`owner`); staff
and the system pass `owner=None` and may move any balance. `created_by` is
who asks: a deactivated one moves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from loyalty.earning import EarnRider
from loyalty.reversal import RefundReversal
from transactions.models import REFUNDABLE_TYPES, Transaction, TransactionSource, TransactionType
from transactions.posting.engine import post
from transactions.posting.hooks import OnBooked, first_entry
from transactions.posting.movement import Booking, Leg, can_receive, not_frozen
from transactions.posting.planning import Plan, plan_and_post, visible_balance
from transactions.selectors import refunded_amount
from wallet_project.errors import (
    AmountTooSmall,
    NotFound,
    NotRefundable,
    RateUnavailable,
    RefundExceedsPayment,
    SameBalance,
)
from wallet_project.money import check_precision, convert, format_amount, format_rate, round_down

if TYPE_CHECKING:
    from accounts.models import User
    from transactions.posting.facts import BalanceFacts
    from transactions.posting.rows import BalanceRow
    from wallets.models import WalletBalance

    Found = Mapping[UUID, BalanceRow | BalanceFacts]

__all__ = [
    "OnBooked",
    "deposit_create",
    "one_balance_plan",
    "opening_deposit_create",
    "payment_create",
    "refund_create",
    "transfer_create",
    "transfer_credit",
    "transfer_plan",
    "withdrawal_create",
]


def one_balance_plan(
    type_: TransactionType,
    balance_id: UUID,
    amount: Decimal,
    owner: User | None,
    *,
    reference: UUID | None = None,
    description: str | None = None,
    merchant: str | None = None,
) -> Plan:
    """The plan of one entry on one balance (deposit, withdrawal, payment); `reference`, `description` and
    `merchant`, when given, are its entry's own rather than its posting's (a batch)."""

    def plan(found: Found) -> list[Leg]:
        balance = visible_balance(found, balance_id, owner)
        check_precision(amount, balance.minor_unit, balance.currency_id)
        return [Leg(balance.pk, type_, amount, reference=reference, description=description, merchant=merchant)]

    return plan


def _one_balance(
    type_: TransactionType, balance_id: UUID, amount: Decimal, owner: User | None, booking: Booking
) -> Transaction:
    """One entry on one balance (deposit, withdrawal, payment)."""
    balance_id = UUID(str(balance_id))  # callers outside the API may pass the id as text
    (entry,) = plan_and_post([balance_id], one_balance_plan(type_, balance_id, amount, owner), booking)
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
    """Credit a balance. Raises InactiveAccount, NotFound, InvalidInput, WalletFrozen, LockTimeout,
    ServiceUnavailable."""
    booking = Booking(created_by, source, description, on_posted=first_entry(on_booked))
    return _one_balance(TransactionType.DEPOSIT, wallet_balance_id, amount, owner, booking)


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
    """Debit a balance. Raises InactiveAccount, NotFound, InvalidInput, WalletFrozen, InsufficientFunds,
    LockTimeout, ServiceUnavailable."""
    booking = Booking(created_by, source, description, on_posted=first_entry(on_booked))
    return _one_balance(TransactionType.WITHDRAWAL, wallet_balance_id, amount, owner, booking)


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
    """Pay a merchant from a balance; the entry carries the cashback it earned (`loyalty.earning.earned_by`).

    Raises InactiveAccount, NotFound, InvalidInput, WalletFrozen, InsufficientFunds, LockTimeout,
    ServiceUnavailable."""
    booking = Booking(
        created_by, source, description, merchant=merchant, on_posted=first_entry(on_booked), rider=EarnRider()
    )
    return _one_balance(TransactionType.PAYMENT, wallet_balance_id, amount, owner, booking)


def opening_deposit_create(
    *,
    balance: WalletBalance,
    amount: Decimal,
    created_by: User | None,
    source: str = TransactionSource.API,
    open_balance: Callable[[], object] | None = None,
) -> Transaction:
    """Insert a new (unsaved) balance and book its opening DEPOSIT in one database transaction.

    `open_balance` inserts it (`balance.save` by default), with what must commit with it.
    Raises InactiveAccount, InvalidInput, WalletFrozen, LockTimeout, ServiceUnavailable, and
    IntegrityError when the wallet already holds that currency.
    """
    check_precision(amount, balance.currency.minor_unit, balance.currency_id)
    (entry,) = post(
        [Leg(balance.pk, TransactionType.DEPOSIT, amount)],
        Booking(created_by, source, "Opening deposit"),
        create_balance=open_balance or balance.save,
    )
    return entry


def transfer_credit(*, amount: Decimal, rate: Decimal, minor_unit: int) -> Decimal:
    """What a transfer of `amount` credits at `rate`: the product, rounded down to the destination's minor unit."""
    return round_down(convert(amount, rate), minor_unit)


def _conversion(
    amount: Decimal, source_balance: BalanceRow | BalanceFacts, destination: BalanceRow | BalanceFacts
) -> tuple[Decimal | None, Decimal]:
    """The rate (None within one currency) and what the destination is credited."""
    if destination.currency_id == source_balance.currency_id:
        return None, amount
    # Only a fresh read (a BalanceRow, with the rate) gets here: known facts serve one currency only.
    rate = source_balance.rate_to(destination.currency_id)  # type: ignore[union-attr]
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
    return rate, credit


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

    Raises InactiveAccount, NotFound, InvalidInput, SameBalance, RateUnavailable, AmountTooSmall,
    WalletFrozen, InsufficientFunds, LockTimeout, ServiceUnavailable.
    """
    source_id, destination_id = UUID(str(from_wallet_balance_id)), UUID(str(to_wallet_balance_id))
    # The fresh read is one statement: both balances, who owns them, and the
    # current rate from each one's currency to the other's.
    booking = Booking(created_by, source, description, on_posted=first_entry(on_booked))
    plan = transfer_plan(source_id, destination_id, amount, owner)
    entries = plan_and_post([source_id, destination_id], plan, booking, with_rate=True)
    return entries[0]


def transfer_plan(
    source_id: UUID,
    destination_id: UUID,
    amount: Decimal,
    owner: User | None,
    *,
    reference: UUID | None = None,
    description: str | None = None,
) -> Plan:
    """The plan of a transfer (its two legs, converted at the rate read with the balances); `reference` and
    `description`, when given, are its entries' own rather than its posting's (a batch)."""

    def plan(found: Found) -> list[Leg]:
        source_balance = visible_balance(found, source_id, owner)
        check_precision(amount, source_balance.minor_unit, source_balance.currency_id)
        # The destination may be anyone's (API.md); it only has to exist.
        destination = found.get(destination_id)
        if destination is None:
            raise NotFound("No such wallet balance.")
        if destination.pk == source_balance.pk:
            raise SameBalance()
        rate, credit = _conversion(amount, source_balance, destination)
        # The sender learns nothing of someone else's wallet, not even that it is frozen.
        own = owner is not None and destination.owner_id == owner.pk
        return [
            Leg(
                source_balance.pk,
                TransactionType.TRANSFER_OUT,
                amount,
                destination.pk,
                rate,
                reference=reference,
                description=description,
            ),
            Leg(
                destination.pk,
                TransactionType.TRANSFER_IN,
                credit,
                source_balance.pk,
                rate,
                checks=(not_frozen,) if own else (can_receive,),
                reference=reference,
                description=description,
            ),
        ]

    return plan


def refund_create(
    *,
    payment_id: UUID,
    amount: Decimal | None,
    created_by: User | None,
    source: str = TransactionSource.API,
    description: str = "",
    on_booked: OnBooked | None = None,
) -> Transaction:
    """Refund a payment or a hold's capture, in full by default or in part, onto the balance that paid it; returns
    the REFUND entry. The cashback the payment earned is taken back in proportion, in the same posting
    (`loyalty.reversal`).

    Raises InactiveAccount, NotFound, InvalidInput, NotRefundable, RefundExceedsPayment, WalletFrozen,
    LockTimeout, ServiceUnavailable.
    """
    payment = Transaction.objects.select_related("currency").filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("No such transaction.")
    if amount is not None:
        check_precision(amount, payment.currency.minor_unit, payment.currency_id)
    if payment.type not in REFUNDABLE_TYPES:
        raise NotRefundable(f"Only payments and captures can be refunded; this is a {payment.type}.")
    minor_unit = payment.currency.minor_unit
    reversal = RefundReversal.of(payment)

    def settle(locked: Mapping[UUID, BalanceRow]) -> list[Leg]:
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
        return [Leg(payment.wallet_balance_id, TransactionType.REFUND, asked), *reversal.legs(locked, asked)]

    booking = Booking(
        created_by,
        source,
        description or f"Refund of payment {payment.pk}",
        merchant=payment.merchant,
        reference=payment.reference,
        on_posted=reversal.on_posted(first_entry(on_booked)),
    )
    # The amount is settled under the lock.
    refund, *_ = post(
        [Leg(payment.wallet_balance_id, TransactionType.REFUND, amount or payment.amount), *reversal.lock_steps()],
        booking,
        settle=settle,
    )
    return refund
