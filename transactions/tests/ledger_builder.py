"""Balances with long ledgers for the statement tests, every entry booked by the posting engine.

A posting may book many legs on one balance (the engine chains them, as it
does for a batch of cashback), so thousands of entries take a few postings
rather than thousands of requests; the chain trigger checks each of them.
"""

from __future__ import annotations

import random
from decimal import Decimal

from transactions.models import TransactionSource, TransactionType
from transactions.posting.engine import post
from transactions.posting.movement import Booking, Leg
from transactions.services import payment_create, refund_create, transfer_create
from wallets.models import WalletBalance

LEGS_PER_POSTING = 500
_DEBITS = (TransactionType.WITHDRAWAL, TransactionType.PAYMENT)


def book_many(balance: WalletBalance, count: int, *, seed: int = 7) -> None:
    """`count` more entries on `balance`: deposits, withdrawals and payments of random amounts, never below 0."""
    rng = random.Random(seed)
    balance.refresh_from_db()
    amount = balance.amount
    minor = balance.currency.minor_unit
    while count > 0:
        legs = []
        for _ in range(min(count, LEGS_PER_POSTING)):
            value = Decimal(rng.randint(1, 50_000)).scaleb(-minor)
            if amount >= value and rng.random() < 0.45:
                legs.append(Leg(balance.pk, rng.choice(_DEBITS), value))
                amount -= value
            else:
                legs.append(Leg(balance.pk, TransactionType.DEPOSIT, value))
                amount += value
        post(legs, Booking(None, TransactionSource.SEED, "Statement test", merchant="Shop"))
        count -= len(legs)


def book_other_types(balance: WalletBalance, counterpart: WalletBalance, staff) -> None:
    """A transfer each way, a payment and its partial refund on `balance` (which must hold at least 20)."""
    transfer_create(
        from_wallet_balance_id=balance.pk,
        to_wallet_balance_id=counterpart.pk,
        amount=Decimal("5.00"),
        owner=balance.wallet.owner,
        created_by=balance.wallet.owner,
        description="=cmd|' /C calc'!A0",  # a spreadsheet formula, which the CSV must not let run
    )
    transfer_create(
        from_wallet_balance_id=counterpart.pk,
        to_wallet_balance_id=balance.pk,
        amount=Decimal("3.00"),
        owner=None,
        created_by=None,
        source=TransactionSource.SYSTEM,
    )
    payment = payment_create(
        wallet_balance_id=balance.pk,
        amount=Decimal("10.00"),
        merchant="Café Zürich 東京",
        owner=balance.wallet.owner,
        created_by=balance.wallet.owner,
        description="Line one\nline two",
    )
    refund_create(payment_id=payment.pk, amount=Decimal("4.00"), created_by=staff)
