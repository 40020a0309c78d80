"""Reads of the wallets app."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from django.db.models import Prefetch, QuerySet

from transactions.holds.selectors import balances_with_held_now
from wallet_project.errors import InvalidInput, NotFound, RateUnavailable
from wallet_project.money import EXACT, convert, round_down
from wallets.models import Currency, ExchangeRate, Wallet, WalletBalance

if TYPE_CHECKING:
    from accounts.models import User


def wallets_with_balances() -> QuerySet[Wallet]:
    """Wallets with their balances as the API renders them: each with what its holds reserve now (no query per
    row)."""
    balances = balances_with_held_now(WalletBalance.objects.select_related("currency").order_by("currency_id"))
    return Wallet.objects.prefetch_related(Prefetch("balances", queryset=balances))


def wallet_list(*, owner: User) -> QuerySet[Wallet]:
    return wallets_with_balances().filter(owner=owner)


def wallet_get(*, owner: User, wallet_id: UUID) -> Wallet:
    """The owner's wallet with its balances; raises NotFound."""
    wallet = wallet_list(owner=owner).filter(pk=wallet_id).first()
    if wallet is None:
        raise NotFound("No such wallet.")
    return wallet


def balance_get(*, owner: User, balance_id: UUID) -> WalletBalance:
    """The owner's balance; raises NotFound."""
    balances = balances_with_held_now(WalletBalance.objects.select_related("currency"))
    balance = balances.filter(pk=balance_id, wallet__owner=owner).first()
    if balance is None:
        raise NotFound("No such wallet balance.")
    return balance


def currency_get(*, code: str, field: str = "currency") -> Currency:
    """A known currency; raises InvalidInput (400) naming `field`."""
    currency = Currency.objects.filter(pk=code).first()
    if currency is None:
        raise InvalidInput(f"Unknown currency {code!r}.", details={field: [f"Unknown currency {code!r}."]})
    return currency


def current_rates(*, base: str | None = None) -> QuerySet[ExchangeRate]:
    rates = ExchangeRate.objects.filter(valid_to__isnull=True).order_by("base_id", "quote_id")
    return rates.filter(base_id=base) if base else rates


@dataclass(frozen=True)
class TotalBalance:
    wallet_id: UUID
    currency: Currency
    total: Decimal
    rates: list[tuple[str, str, Decimal]]


def wallet_total_balance(*, wallet: Wallet, currency: Currency) -> TotalBalance:
    """Every balance converted exactly at the current rates, summed, rounded down once; raises RateUnavailable."""
    balances = list(wallet.balances.all())
    foreign = {balance.currency_id for balance in balances} - {currency.code}
    rates = {rate.base_id: rate.rate for rate in current_rates().filter(base_id__in=foreign, quote_id=currency.code)}
    missing = sorted(foreign - rates.keys())
    if missing:
        raise RateUnavailable(
            f"There is no current exchange rate from {', '.join(missing)} to {currency.code}.",
            details={"missing": [f"{code}->{currency.code}" for code in missing]},
        )
    exact = Decimal(0)
    for balance in balances:  # exact: the sum is rounded once, at the end
        exact = EXACT.add(exact, convert(balance.amount, rates.get(balance.currency_id, Decimal(1))))
    return TotalBalance(
        wallet_id=wallet.pk,
        currency=currency,
        total=round_down(exact, currency.minor_unit),
        rates=[(code, currency.code, rates[code]) for code in sorted(rates)],
    )


_minor_units: dict[str, int] = {}


def minor_unit_of(code: str) -> int:
    """A currency's minor unit from a per-process cache; minor units never change once a currency exists."""
    try:
        return _minor_units[code]
    except KeyError:
        _minor_units.update(Currency.objects.values_list("code", "minor_unit"))
        return _minor_units[code]
