"""Reads of the loyalty app: a user's rewards and the totals per currency."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet, Sum

from loyalty.models import Reward, RewardStatus

if TYPE_CHECKING:
    from accounts.models import User


def reward_list(*, owner: User, currency: str | None = None, status: str | None = None) -> QuerySet[Reward]:
    """The owner's rewards (newest first once paginated), with their programmes."""
    rewards = Reward.objects.filter(owner=owner).select_related("program")
    if currency:
        rewards = rewards.filter(currency_id=currency)
    if status:
        rewards = rewards.filter(status=status)
    return rewards


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    earned: Decimal
    reversed: Decimal
    pending: Decimal

    @property
    def net(self) -> Decimal:
        return self.earned - self.reversed


def loyalty_totals(*, owner: User) -> list[CurrencyTotals]:
    """Per currency the owner has rewards in: earned (booked or pending), reversed, pending; unfunded rewards earned
    nothing and are left out."""
    counted = ~Q(status=RewardStatus.UNFUNDED)
    pending = Q(status=RewardStatus.PENDING)
    rows = (
        Reward.objects.filter(owner=owner)
        .values("currency_id")
        .annotate(
            earned=Sum("amount", filter=counted),
            reversed=Sum("reversed_amount", filter=counted),
            pending_amount=Sum("amount", filter=pending),
            pending_reversed=Sum("reversed_amount", filter=pending),
        )
        .order_by("currency_id")
    )
    zero = Decimal(0)
    return [
        CurrencyTotals(
            currency=row["currency_id"],
            earned=row["earned"] or zero,
            reversed=row["reversed"] or zero,
            pending=(row["pending_amount"] or zero) - (row["pending_reversed"] or zero),
        )
        for row in rows
    ]
