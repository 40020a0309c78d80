"""Writes of the wallets app: wallets, balances, freezing, exchange rates."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from accounts.selectors import actor_ensure_active
from events import outbox
from events.models import EventType
from transactions.models import TransactionSource
from transactions.services import opening_deposit_create
from wallet_project.errors import BalanceExists, InvalidInput, NotFound, WalletExists
from wallet_project.money import check_precision
from wallets.locks import balance_locks
from wallets.models import Currency, ExchangeRate, StaffAction, Wallet, WalletBalance
from wallets.selectors import wallets_with_balances
from wallets.serializers import BalanceOutputSerializer, RateOutputSerializer, WalletOutputSerializer

if TYPE_CHECKING:
    from accounts.models import User

audit_logger = logging.getLogger("wallet.audit")


def wallet_create(*, owner: User, name: str) -> Wallet:
    """Create a wallet; raises InactiveAccount, WalletExists when the owner has one of that name."""
    actor_ensure_active(actor=owner)
    if Wallet.objects.filter(owner=owner, name=name).exists():
        raise WalletExists(f"You already have a wallet named {name!r}.")
    try:
        with transaction.atomic():
            wallet = Wallet.objects.create(owner=owner, name=name)
            outbox.record(EventType.WALLET_CREATED, user_id=owner.pk, data=_wallet_data(wallet))
            return wallet
    except IntegrityError as exc:
        if not type(owner).objects.filter(pk=owner.pk).exists():
            # A valid access token of a deleted user (authentication does not load the user).
            raise type(owner).DoesNotExist("The user of this token no longer exists.") from exc
        raise WalletExists(f"You already have a wallet named {name!r}.") from exc


def balance_create(
    *,
    wallet_id: UUID,
    owner: User | None,
    currency: str,
    initial_amount: Decimal | None,
    created_by: User | None,
    source: str = TransactionSource.API,
) -> WalletBalance:
    """Open a balance in a wallet; a non-zero initial amount is booked as a DEPOSIT entry.

    Raises InactiveAccount, NotFound, InvalidInput, BalanceExists, WalletFrozen, LockTimeout,
    ServiceUnavailable. An opening deposit checks its actor again under the balance's lock.
    """
    for actor in {owner, created_by} - {None}:
        actor_ensure_active(actor=actor)
    # The input first, then visibility (API.md: 400 → 404 → 422); the currency says nothing about the wallet.
    currency_row = Currency.objects.filter(pk=currency).first()
    if currency_row is None:
        raise InvalidInput(f"Unknown currency {currency!r}.", details={"currency": [f"Unknown currency {currency!r}."]})
    if initial_amount:
        check_precision(initial_amount, currency_row.minor_unit, currency_row.code, field="initial_amount")
    wallets = Wallet.objects.all() if owner is None else Wallet.objects.filter(owner=owner)
    wallet = wallets.filter(pk=wallet_id).first()
    if wallet is None:
        raise NotFound("No such wallet.")
    balance = WalletBalance(id=uuid.uuid4(), wallet=wallet, currency=currency_row)
    if WalletBalance.objects.filter(wallet=wallet, currency=currency_row).exists():
        raise BalanceExists(f"Wallet {wallet.pk} already holds a {currency} balance.")

    def open_balance() -> None:
        balance.save()
        outbox.record(EventType.BALANCE_CREATED, user_id=wallet.owner_id, data=BalanceOutputSerializer(balance).data)

    try:
        if initial_amount:
            # Opened in the posting of its first deposit: balance.created, then movement.created.
            opening_deposit_create(
                balance=balance, amount=initial_amount, created_by=created_by, source=source, open_balance=open_balance
            )
        else:
            with transaction.atomic():
                open_balance()
    except IntegrityError as exc:  # a concurrent request opened the same currency first
        raise BalanceExists(f"Wallet {wallet.pk} already holds a {currency} balance.") from exc
    return WalletBalance.objects.select_related("currency").get(pk=balance.pk)


def wallet_set_frozen(*, wallet_id: UUID, frozen: bool, on_changed: Callable[[Wallet], None] | None = None) -> Wallet:
    """Freeze or unfreeze a wallet (back office); raises NotFound, LockTimeout, ServiceUnavailable.

    It takes the locks of every balance of the wallet, as a movement does, so
    that a movement in flight finishes before the freeze and none starts after
    it without seeing it. `on_changed`, if given, runs in the same database
    transaction when the state did change (not when it already was `frozen`),
    so that what records the change commits with it or not at all.
    """
    if not Wallet.objects.filter(pk=wallet_id).exists():
        raise NotFound("No such wallet.")
    balance_ids = list(WalletBalance.objects.filter(wallet_id=wallet_id).values_list("pk", flat=True))
    with balance_locks(balance_ids), transaction.atomic():
        list(WalletBalance.objects.select_for_update(no_key=True).filter(pk__in=balance_ids).order_by("pk"))
        wallet = Wallet.objects.select_for_update().get(pk=wallet_id)
        if wallet.is_frozen != frozen:
            wallet.is_frozen = frozen
            wallet.save(update_fields=["is_frozen"])
            kind = EventType.WALLET_FROZEN if frozen else EventType.WALLET_UNFROZEN
            outbox.record(kind, user_id=wallet.owner_id, data=_wallet_data(wallet))
            if on_changed is not None:
                on_changed(wallet)
    return wallet


def _wallet_data(wallet: Wallet) -> dict[str, Any]:
    """A wallet as the API renders it, balances included, for its event."""
    return dict(WalletOutputSerializer(wallets_with_balances().get(pk=wallet.pk)).data)


# Called in the new rate's database transaction with the new rate and the one it replaced (None for a
# pair's first), while the pair stays locked; raising undoes the new rate.
OnRateCreated = Callable[[ExchangeRate, ExchangeRate | None], None]


def exchange_rate_create(
    *, base: str, quote: str, rate: Decimal, created_by: User | None, on_created: OnRateCreated | None = None
) -> ExchangeRate:
    """Make `rate` the current rate of the pair, closing the current one (kept for audit).

    Raises InactiveAccount, and InvalidInput for an unknown currency, a pair of one currency or a rate
    that is not positive; IntegrityError when another pair's first rate was set at the same moment.
    """
    actor_ensure_active(actor=created_by)
    if base == quote:
        raise InvalidInput("A rate needs two different currencies.", details={"quote": ["Must differ from base."]})
    if not rate.is_finite() or rate <= 0:
        raise InvalidInput("A rate must be positive.", details={"rate": ["Must be greater than zero."]})
    known = set(Currency.objects.filter(code__in=[base, quote]).values_list("code", flat=True))
    for field, code in (("base", base), ("quote", quote)):
        if code not in known:
            raise InvalidInput(f"Unknown currency {code!r}.", details={field: [f"Unknown currency {code!r}."]})
    with transaction.atomic():
        now = timezone.now()
        # Lock the pair's current rate so that two new rates cannot both close it.
        current = ExchangeRate.objects.select_for_update().filter(base_id=base, quote_id=quote, valid_to__isnull=True)
        replaced = current.first()
        current.update(valid_to=now)
        created = ExchangeRate.objects.create(
            base_id=base, quote_id=quote, rate=rate, valid_from=now, created_by=created_by
        )
        # Staff's stream only: rates are public, but who changed them and when is the back office's.
        outbox.record(EventType.RATE_CHANGED, user_id=None, data=_rate_data(created, replaced))
        if on_created is not None:
            on_created(created, replaced)
        return created


def _rate_data(created: ExchangeRate, replaced: ExchangeRate | None) -> dict[str, Any]:
    data = dict(RateOutputSerializer(created).data)
    data["previous_rate"] = None if replaced is None else RateOutputSerializer(replaced).data["rate"]
    data["created_by"] = None if created.created_by_id is None else str(created.created_by_id)
    return data


def staff_action_record(
    *,
    staff: User,
    action: StaffAction.Action,
    target: Model,
    reason: str,
    details: Mapping[str, Any],
) -> StaffAction:
    """Write a back-office action to the staff-action history, and its audit line once it commits.

    Call it inside the database transaction of the action itself (a service's
    `on_booked` / `on_changed` hook, or an atomic block around the service),
    so that the history never shows an action that did not happen.
    """
    staff_action = StaffAction.objects.create(
        staff=staff,
        action=action,
        target_type=ContentType.objects.get_for_model(type(target)),
        target_id=str(target.pk),
        target_repr=str(target)[:200],
        reason=reason,
        details=dict(details),
    )
    audit_line = {
        "staff_action_id": str(staff_action.pk),
        "action": staff_action.action,
        "staff": str(staff.pk),
        "staff_email": staff.email,
        "target_type": staff_action.target_type.model,
        "target_id": staff_action.target_id,
        "reason": reason,
        "details": staff_action.details,
    }
    transaction.on_commit(lambda: audit_logger.info("staff action", extra=audit_line))
    return staff_action
