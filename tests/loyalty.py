"""Helpers for the loyalty tests: a programme with an operator's funding balance, and booking what is pending."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from loyalty.booking import Round, rewards_book
from loyalty.models import LoyaltyProgram
from tests.factories import UserFactory, WalletFactory, funded_balance


def program_in(
    currency: str = "USD",
    *,
    earn_rate: int = 100,
    cap: str | None = None,
    funding: str = "1000.00",
    active: bool = True,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    name: str = "Cashback",
) -> LoyaltyProgram:
    """A programme earning `earn_rate` basis points in `currency`, funded by a new operator's balance of `funding`."""
    operator = UserFactory(is_staff=True)
    funding_balance = funded_balance(currency=currency, amount=funding, wallet=WalletFactory(owner=operator))
    return LoyaltyProgram.objects.create(
        name=name,
        currency_id=currency,
        earn_rate=earn_rate,
        max_per_payment=None if cap is None else Decimal(cap),
        valid_from=valid_from or timezone.now() - timedelta(days=1),
        valid_to=valid_to,
        is_active=active,
        funding_balance=funding_balance,
    )


def book_all() -> Round:
    """Book every pending reward, as the worker would (rounds until none is left)."""
    total = Round()
    while True:
        done = rewards_book(limit=1000)
        for name in ("pending", "booked", "unfunded", "reversed", "left_pending"):
            setattr(total, name, getattr(total, name) + getattr(done, name))
        if done.pending < 1000:
            return total
