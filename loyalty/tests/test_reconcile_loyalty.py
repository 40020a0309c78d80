"""`manage.py reconcile` proves the cashback: paired entries, the rewards against the ledger, and money conserved."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from loyalty.models import Reward
from tests.factories import WalletFactory, funded_balance
from tests.loyalty import book_all, program_in
from transactions.models import Transaction, TransactionType
from transactions.services import deposit_create, payment_create, refund_create
from transactions.tests.test_reconcile import ledger_guards_lifted, reconcile, reconcile_failure, run_sql

pytestmark = pytest.mark.django_db


@pytest.fixture
def cashback(user):
    """Two payments with booked cashback (1.00 and 0.50), the first refunded in half (0.50 moved back)."""
    program = program_in("USD", funding="100.00")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    common = {"wallet_balance_id": balance.pk, "merchant": "Shop", "owner": user, "created_by": user}
    first = payment_create(amount=Decimal("100.00"), **common)
    second = payment_create(amount=Decimal("50.00"), **common)
    book_all()
    refund_create(payment_id=first.pk, amount=Decimal("50.00"), created_by=None)
    return program, balance, first, second


def test_reconcile_passes_on_cashback_booked_and_reversed(cashback):
    out, _ = reconcile()

    assert "OK: every invariant holds." in out


def test_reconcile_passes_with_pending_and_unfunded_rewards(user):
    program_in("USD", earn_rate=5000, funding="10.00")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    for amount in ("10.00", "30.00", "4.00"):
        payment_create(wallet_balance_id=balance.pk, amount=Decimal(amount), merchant="S", owner=user, created_by=user)
    book_all()  # 5.00 booked, 15.00 unfunded, 2.00 booked
    payment_create(wallet_balance_id=balance.pk, amount=Decimal("8.00"), merchant="S", owner=user, created_by=user)

    out, _ = reconcile()

    assert "OK: every invariant holds." in out


def test_reconcile_fails_naming_a_cashback_credit_without_its_funding_debit(cashback):
    _, _, first, _ = cashback
    funding = Transaction.objects.get(reference=first.reference, type=TransactionType.LOYALTY_FUNDING)
    with ledger_guards_lifted():
        run_sql("DELETE FROM transactions_transaction WHERE id = %s", [funding.pk])
        run_sql(
            "UPDATE wallets_walletbalance SET amount = amount + %s, last_sequence = last_sequence - 1 WHERE id = %s",
            [funding.amount, funding.wallet_balance_id],
        )

    message = reconcile_failure()

    assert f"reference {first.reference}" in message
    assert "currency USD" in message  # money was created: the credit has no debit


def test_reconcile_fails_naming_a_reward_that_disagrees_with_its_entries(cashback):
    _, _, _, second = cashback
    run_sql("UPDATE loyalty_reward SET booked_amount = booked_amount - 0.01 WHERE payment_id = %s", [second.pk])

    message = reconcile_failure()

    assert f"reference {second.reference}" in message


def test_reconcile_fails_naming_a_reversal_the_reward_does_not_know(cashback):
    _, _, first, _ = cashback
    run_sql("UPDATE loyalty_reward SET reversed_amount = reversed_amount - 0.10 WHERE payment_id = %s", [first.pk])

    message = reconcile_failure()

    assert f"reference {first.reference}" in message


def test_reconcile_fails_naming_money_created_out_of_nothing(user):
    # A credit with no debit anywhere, chained correctly: every balance still agrees with its entries.
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    deposit_create(wallet_balance_id=balance.pk, amount=Decimal("1.00"), owner=None, created_by=None)
    entry = Transaction.objects.filter(wallet_balance=balance).order_by("-sequence").first()
    with ledger_guards_lifted():
        run_sql("UPDATE transactions_transaction SET type = %s WHERE id = %s", [TransactionType.LOYALTY, entry.pk])

    out = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("reconcile", stdout=out, stderr=io.StringIO())

    assert "currency USD" in str(excinfo.value)
    assert "not zero: money was created or lost" in out.getvalue()
    assert f"reference {entry.reference}" in str(excinfo.value)  # cashback of no payment


def test_reconcile_fails_naming_a_reward_on_another_balance_than_its_payment(cashback, user):
    _, _, first, _ = cashback
    other = funded_balance(amount="0", wallet=WalletFactory(owner=user))
    reward = Reward.objects.get(payment=first)
    run_sql("UPDATE loyalty_reward SET wallet_balance_id = %s WHERE id = %s", [other.pk, reward.pk])

    message = reconcile_failure()

    assert f"reward {reward.pk}" in message


def test_reconcile_fails_naming_a_reward_of_no_programme(cashback):
    _, _, first, _ = cashback
    reward = Reward.objects.get(payment=first)
    run_sql("UPDATE loyalty_reward SET program_id = gen_random_uuid() WHERE id = %s", [reward.pk])

    message = reconcile_failure()

    assert f"reward {reward.pk}" in message
