"""factory_boy factories. Balances are opened empty; money only ever arrives through the services."""

from __future__ import annotations

from decimal import Decimal

import factory

from accounts.models import User
from transactions.models import TransactionSource
from transactions.services import deposit_create
from wallets.models import Currency, Wallet, WalletBalance

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class WalletFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Wallet

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Wallet {n}")


class BalanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WalletBalance

    wallet = factory.SubFactory(WalletFactory)
    currency = factory.LazyFunction(lambda: Currency.objects.get(pk="USD"))


def funded_balance(
    *, currency: str = "USD", amount: str | Decimal = "100.00", wallet: Wallet | None = None
) -> WalletBalance:
    """A balance holding `amount`, booked as a SEED deposit through the one road."""
    balance = BalanceFactory(currency=Currency.objects.get(pk=currency), **({"wallet": wallet} if wallet else {}))
    if Decimal(amount) > 0:
        deposit_create(
            wallet_balance_id=balance.pk,
            amount=Decimal(amount),
            owner=None,
            created_by=None,
            source=TransactionSource.SEED,
        )
    balance.refresh_from_db()
    return balance
