"""The holds' writes, each a posting on the one road (transactions/posting/engine.py).

A hold reserves part of a balance (`held_amount` rises, what debits may use
falls) and writes no ledger entry; a capture books a CAPTURE entry and
releases what it uses (all that remains when `final`); a void releases what
remains. Each runs under the balance's Redis lock and row lock, and reads the
hold again under them: two resolutions of one hold are serialised by the
balance, so exactly one of them finds it active. A hold past its expiry is
released by the next posting on its balance (the engine's first step) or by
`holds_expire`, the sweeper, whichever comes first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from django.utils import timezone

from events.models import EventType
from loyalty.earning import EarnRider
from transactions.holds.events import hold_tell
from transactions.holds.selectors import hold_get
from transactions.models import Hold, HoldStatus, Transaction, TransactionSource, TransactionType
from transactions.posting.engine import post
from transactions.posting.movement import Booking, Leg, Reserve, not_frozen
from transactions.posting.planning import plan_and_post, visible_balance
from wallet_project.errors import CaptureExceedsHold, HoldExpired, HoldNotActive, LockTimeout, ServiceUnavailable
from wallet_project.ids import uuid7
from wallet_project.money import check_precision, format_amount
from wallets.models import WalletBalance
from wallets.selectors import minor_unit_of

if TYPE_CHECKING:
    from accounts.models import User
    from transactions.posting.facts import BalanceFacts
    from transactions.posting.rows import BalanceRow

audit_logger = logging.getLogger("wallet.audit")

MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 30 * 24 * 3600
DEFAULT_EXPIRES_IN = 7 * 24 * 3600


def hold_create(
    *,
    wallet_balance_id: UUID,
    amount: Decimal,
    owner: User | None,
    created_by: User | None,
    description: str = "",
    merchant: str = "",
    expires_in: int = DEFAULT_EXPIRES_IN,
    source: str = TransactionSource.API,
    on_created: Callable[[Hold], None] | None = None,
) -> Hold:
    """Reserve `amount` of a balance for `expires_in` seconds. `on_created` runs in the same database transaction.

    Raises InactiveAccount, NotFound, InvalidInput, WalletFrozen, InsufficientFunds (beyond what is available),
    LockTimeout, ServiceUnavailable.
    """
    balance_id = UUID(str(wallet_balance_id))
    lifetime = timedelta(seconds=expires_in)
    # The balance's due time may be early, never late: this one is taken before the locks, the hold's own
    # expiry once they are held, so a wait for a busy balance never eats into the hold's lifetime.
    due_by = timezone.now() + lifetime
    planned: dict[str, BalanceRow | BalanceFacts] = {}
    created: list[Hold] = []

    def plan(found: Mapping[UUID, BalanceRow | BalanceFacts]) -> list[Reserve]:
        balance = planned["balance"] = visible_balance(found, balance_id, owner)
        check_precision(amount, balance.minor_unit, balance.currency_id)
        return [Reserve(balance.pk, amount, until=due_by, checks=(not_frozen,))]

    def write_hold(entries: object) -> None:
        balance = planned["balance"]
        hold = Hold(
            id=uuid7(),
            wallet_balance_id=balance.pk,
            owner_id=balance.owner_id,
            currency_id=balance.currency_id,
            amount=amount,
            description=description,
            merchant=merchant,
            expires_at=timezone.now() + lifetime,
            created_by=created_by,
        )
        hold.save(force_insert=True)
        created.append(hold)
        hold_tell(EventType.HOLD_CREATED, hold)
        if on_created is not None:
            on_created(hold)

    plan_and_post([balance_id], plan, Booking(created_by, source, description, merchant, on_posted=write_hold))
    (hold,) = created
    _audit("hold created", hold, created_by)
    return hold


@dataclass(frozen=True)
class Captured:
    hold: Hold
    entry: Transaction


def hold_capture(
    *,
    hold_id: UUID,
    amount: Decimal | None,
    final: bool = True,
    owner: User | None,
    created_by: User | None,
    source: str = TransactionSource.API,
    on_captured: Callable[[Captured], None] | None = None,
) -> Captured:
    """Capture `amount` of a hold (what remains when None) as a CAPTURE entry with the hold's reference; the
    entry earns cashback as a payment does (`loyalty.earning`).

    `final` releases the rest and resolves the hold (`captured`); otherwise the
    rest stays reserved for later captures. `on_captured` runs in the same
    database transaction. Raises InactiveAccount, NotFound, InvalidInput, HoldNotActive, HoldExpired,
    CaptureExceedsHold, WalletFrozen, LockTimeout, ServiceUnavailable.
    """
    hold = hold_get(hold_id=hold_id, owner=owner)
    minor_unit = minor_unit_of(hold.currency_id)
    if amount is not None:
        check_precision(amount, minor_unit, hold.currency_id)
    settled: dict[str, object] = {}

    def settle(locked: Mapping[UUID, BalanceRow]) -> list[Reserve | Leg]:
        current = _active(hold.pk, capturing=True)
        remaining = current.amount - current.captured_amount
        asked = remaining if amount is None else amount
        if asked > remaining:
            raise CaptureExceedsHold(
                f"{format_amount(remaining, minor_unit)} {current.currency_id} remains on this hold; "
                f"{format_amount(asked, minor_unit)} was asked.",
                details={
                    "remaining": format_amount(remaining, minor_unit),
                    "requested": format_amount(asked, minor_unit),
                },
            )
        not_frozen(locked[current.wallet_balance_id])
        settled.update(hold=current, asked=asked)
        release = remaining if final else asked
        return [
            Reserve(current.wallet_balance_id, -release),
            Leg(current.wallet_balance_id, TransactionType.CAPTURE, asked),
        ]

    def record(entries: list[Transaction]) -> None:
        current, asked = settled["hold"], settled["asked"]
        assert isinstance(current, Hold) and isinstance(asked, Decimal)
        current.captured_amount += asked
        if final or current.captured_amount == current.amount:
            current.status, current.resolved_at = HoldStatus.CAPTURED, timezone.now()
        current.save(update_fields=["captured_amount", "status", "resolved_at"])
        hold_tell(EventType.HOLD_CAPTURED, current)
        settled["captured"] = Captured(current, entries[0])
        if on_captured is not None:
            on_captured(settled["captured"])

    booking = Booking(
        created_by,
        source,
        hold.description,
        hold.merchant,
        reference=hold.reference,
        on_posted=record,
        rider=EarnRider(),
    )
    # The amount is settled under the lock, from the hold as it is then.
    post([Reserve(hold.wallet_balance_id, Decimal(0))], booking, settle=settle)
    captured = settled["captured"]
    assert isinstance(captured, Captured)
    return captured


def hold_void(
    *,
    hold_id: UUID,
    owner: User | None,
    created_by: User | None,
    source: str = TransactionSource.API,
    on_voided: Callable[[Hold], None] | None = None,
) -> Hold:
    """Release what remains of a hold and resolve it (`voided`), even on a frozen wallet.

    `on_voided` runs in the same database transaction. Raises InactiveAccount, NotFound, HoldNotActive,
    LockTimeout, ServiceUnavailable.
    """
    hold = hold_get(hold_id=hold_id, owner=owner)
    voided: list[Hold] = []

    def settle(locked: Mapping[UUID, BalanceRow]) -> list[Reserve]:
        current = _active(hold.pk, capturing=False)
        voided.append(current)
        return [Reserve(current.wallet_balance_id, -(current.amount - current.captured_amount))]

    def record(entries: object) -> None:
        (current,) = voided
        current.status, current.resolved_at = HoldStatus.VOIDED, timezone.now()
        current.save(update_fields=["status", "resolved_at"])
        hold_tell(EventType.HOLD_VOIDED, current)
        if on_voided is not None:
            on_voided(current)

    booking = Booking(created_by, source, reference=hold.reference, on_posted=record)
    post([Reserve(hold.wallet_balance_id, Decimal(0))], booking, settle=settle)
    (current,) = voided
    _audit("hold voided", current, created_by)
    return current


def _active(hold_id: UUID, *, capturing: bool) -> Hold:
    """The hold as it is under its balance's locks, if it can still be resolved; else the refusal.

    Expired holds of the balance were released by the engine's first step, so
    an expired hold shows `expired` here, swept or not.
    """
    hold = Hold.objects.get(pk=hold_id)
    if capturing and hold.status_now == HoldStatus.EXPIRED:
        raise HoldExpired(
            f"The hold expired at {hold.expires_at.isoformat()}; it can no longer be captured.",
            details={"status": HoldStatus.EXPIRED, "expires_at": hold.expires_at.isoformat()},
        )
    if hold.status_now != HoldStatus.ACTIVE:
        raise HoldNotActive(
            f"The hold is {hold.status_now}; it is resolved only once.", details={"status": hold.status_now}
        )
    return hold


@dataclass(frozen=True)
class Swept:
    balances: int  # balances with a hold due that were released (a full batch: more may be due)
    holds: int  # holds marked expired


def holds_expire(*, limit: int = 500) -> Swept:
    """Release the holds past their expiry on up to `limit` balances, the most overdue first.

    Each balance is released on the road (its locks, its row lock), exactly as
    the next movement on it would; a balance busy past the lock wait, or Redis
    down, is left for the next round.
    """
    due = list(
        WalletBalance.objects.filter(hold_due_at__lte=timezone.now())
        .order_by("hold_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    expired = 0
    for balance_id in due:
        try:
            expired += _sweep(balance_id)
        except (LockTimeout, ServiceUnavailable):
            continue
    return Swept(balances=len(due), holds=expired)


def _sweep(balance_id: UUID) -> int:
    """Release one balance's expired holds; how many this posting released.

    Counted under the lock, from the engine's own release: another sweep or a
    movement may release the same holds just before, and they are theirs.
    """
    counted: list[int] = []

    def count_released(locked: Mapping[UUID, BalanceRow]) -> list[Reserve]:
        counted.append(locked[balance_id].holds_released)
        return [Reserve(balance_id, Decimal(0))]

    post(
        [Reserve(balance_id, Decimal(0))],
        Booking(None, TransactionSource.SYSTEM, "Expired holds released"),
        settle=count_released,
    )
    (released,) = counted
    return released


def _audit(message: str, hold: Hold, created_by: User | None) -> None:
    minor_unit = minor_unit_of(hold.currency_id)
    audit_logger.info(
        message,
        extra={
            "hold_id": str(hold.pk),
            "wallet_balance_id": str(hold.wallet_balance_id),
            "amount": format_amount(hold.amount, minor_unit),
            "captured_amount": format_amount(hold.captured_amount, minor_unit),
            "currency": hold.currency_id,
            "status": hold.status,
            "created_by": str(created_by.pk) if created_by is not None else None,
        },
    )
