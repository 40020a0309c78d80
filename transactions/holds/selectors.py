"""Reads of the holds: a user's holds, one hold, and what a balance holds back as of now."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from django.db.models import Case, DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from transactions.models import Hold, HoldStatus
from wallet_project.errors import NotFound
from wallet_project.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS

if TYPE_CHECKING:
    from accounts.models import User
    from wallets.models import WalletBalance


@dataclass(frozen=True)
class HoldFilters:
    status: str | None = None
    wallet_balance_id: UUID | None = None


def hold_list(*, owner: User, filters: HoldFilters) -> QuerySet[Hold]:
    """The owner's holds (newest first once paginated). `status` is the status as of now: an active hold past
    its expiry is `expired`, swept or not."""
    holds = Hold.objects.filter(owner=owner)
    if filters.wallet_balance_id:
        holds = holds.filter(wallet_balance_id=filters.wallet_balance_id)
    if filters.status:
        holds = holds_with_status_now(holds, filters.status)
    return holds


def holds_with_status_now(holds: QuerySet[Hold], status: str) -> QuerySet[Hold]:
    """The holds whose status as of now (`Hold.status_now`) is `status`: an active hold past its expiry is
    `expired`, not `active`, whether or not anything swept it."""
    now = timezone.now()
    if status == HoldStatus.ACTIVE:
        return holds.filter(status=HoldStatus.ACTIVE, expires_at__gt=now)
    if status == HoldStatus.EXPIRED:
        return holds.filter(Q(status=HoldStatus.EXPIRED) | Q(status=HoldStatus.ACTIVE, expires_at__lte=now))
    return holds.filter(status=status)


def hold_get(*, hold_id: UUID, owner: User | None) -> Hold:
    """One hold: the owner's, or any with `owner=None` (staff and the system); raises NotFound."""
    holds = Hold.objects.filter(pk=hold_id)
    if owner is not None:
        holds = holds.filter(owner=owner)
    hold = holds.first()
    if hold is None:
        raise NotFound("No such hold.")
    return hold


def held_now(balance: WalletBalance) -> Decimal:
    """What a balance's holds reserve now: its `held_amount`, less any hold past its expiry that no posting has
    released yet. Read from `balances_with_held_now`'s annotation when the balance carries it; else one query,
    only when a hold is due."""
    annotated = getattr(balance, HELD_NOW, None)
    if annotated is not None:
        return annotated
    if balance.hold_due_at is None or balance.hold_due_at > timezone.now():
        return balance.held_amount
    live = Hold.objects.filter(wallet_balance=balance, status=HoldStatus.ACTIVE, expires_at__gt=timezone.now())
    return live.aggregate(total=Sum(F("amount") - F("captured_amount")))["total"] or Decimal(0)


HELD_NOW = "held_now_amount"


def balances_with_held_now(balances: QuerySet[WalletBalance]) -> QuerySet[WalletBalance]:
    """`balances`, each annotated with `held_now_amount`: what `held_now` says, for a whole page in one statement.

    A balance with no hold due reads its `held_amount`; only one whose
    `hold_due_at` has passed sums its live holds, in a subquery that PostgreSQL
    runs for that row alone (a CASE evaluates the branch it takes), on the
    index of active holds by balance.
    """
    now = timezone.now()
    live = (
        Hold.objects.filter(wallet_balance=OuterRef("pk"), status=HoldStatus.ACTIVE, expires_at__gt=now)
        .order_by()
        .values("wallet_balance")
        .annotate(total=Sum(F("amount") - F("captured_amount")))
        .values("total")
    )
    amount = DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)
    return balances.annotate(
        **{
            HELD_NOW: Case(
                When(Q(hold_due_at__isnull=True) | Q(hold_due_at__gt=now), then=F("held_amount")),
                default=Coalesce(Subquery(live, output_field=amount), Value(Decimal(0)), output_field=amount),
                output_field=amount,
            )
        }
    )
