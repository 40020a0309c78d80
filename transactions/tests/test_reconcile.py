"""`manage.py reconcile`: proves the ledger invariants and names what is wrong."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tests.factories import funded_balance
from transactions.models import Transaction, TransactionSource, TransactionType
from transactions.services import payment_create, refund_create, transfer_create
from wallets.models import WalletBalance

pytestmark = pytest.mark.django_db


def reconcile() -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("reconcile", stdout=out, stderr=err, progress_every=20, chunk_size=7)
    return out.getvalue(), err.getvalue()


def reconcile_failure() -> str:
    with pytest.raises(CommandError) as excinfo:
        reconcile()
    return str(excinfo.value)


@contextmanager
def ledger_guards_lifted() -> Iterator[None]:
    """Let a test forge a broken ledger: the triggers refuse it otherwise (rolled back with the test)."""
    with connection.cursor() as cursor:
        # The test's own inserts left deferred foreign-key checks pending; ALTER TABLE waits for none.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE transactions_transaction DISABLE TRIGGER USER")
        cursor.execute("ALTER TABLE wallets_walletbalance DISABLE TRIGGER USER")
        try:
            yield
        finally:
            cursor.execute("ALTER TABLE transactions_transaction ENABLE TRIGGER USER")
            cursor.execute("ALTER TABLE wallets_walletbalance ENABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def run_sql(sql: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def seeded(db):
    call_command("seed_demo", movements=60, stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def cross_currency_transfer(db) -> Transaction:
    """10.00 USD → EUR at the seeded rate 0.91: 9.10 EUR credited."""
    usd = funded_balance(currency="USD", amount="100.00")
    eur = funded_balance(currency="EUR", amount="0")
    return transfer_create(
        from_wallet_balance_id=usd.pk,
        to_wallet_balance_id=eur.pk,
        amount=Decimal("10.00"),
        owner=None,
        created_by=None,
        source=TransactionSource.SEED,
    )


def test_reconcile_passes_on_a_seeded_ledger_and_reports_progress_on_stderr(seeded):
    out, err = reconcile()

    assert "OK: every invariant holds." in out
    assert f"{Transaction.objects.count():,} ledger entries" in out
    assert "reconcile balances: 20 rows" in err
    assert "reconcile" not in out.split("Reconciled", 1)[0]


def test_reconcile_passes_on_an_empty_ledger(db):
    out, _ = reconcile()

    assert "OK: every invariant holds." in out


def test_reconcile_passes_on_a_cross_currency_transfer_and_a_partial_refund(cross_currency_transfer):
    usd = WalletBalance.objects.get(pk=cross_currency_transfer.wallet_balance_id)
    payment = payment_create(
        wallet_balance_id=usd.pk, amount=Decimal("30.00"), merchant="Shop", owner=None, created_by=None
    )
    refund_create(payment_id=payment.pk, amount=Decimal("12.00"), created_by=None)
    refund_create(payment_id=payment.pk, amount=None, created_by=None)

    out, _ = reconcile()

    assert "OK: every invariant holds." in out


def test_reconcile_fails_naming_a_balance_changed_by_hand(seeded):
    balance = WalletBalance.objects.filter(last_sequence__gt=0).order_by("pk").first()
    with ledger_guards_lifted():
        run_sql("UPDATE wallets_walletbalance SET amount = amount + 1 WHERE id = %s", [balance.pk])

    message = reconcile_failure()

    assert f"balance {balance.pk}" in message
    assert "1 wrong balances, 0 wrong references" in message


def test_reconcile_fails_naming_a_balance_whose_last_sequence_was_changed(seeded):
    balance = WalletBalance.objects.filter(last_sequence__gt=1).order_by("pk").first()
    with ledger_guards_lifted():
        run_sql("UPDATE wallets_walletbalance SET last_sequence = last_sequence + 1 WHERE id = %s", [balance.pk])

    message = reconcile_failure()

    assert f"balance {balance.pk}" in message


def test_reconcile_fails_naming_a_transfer_with_a_missing_leg_and_the_balance_it_leaves_wrong(
    cross_currency_transfer,
):
    credit_leg = Transaction.objects.get(reference=cross_currency_transfer.reference, type=TransactionType.TRANSFER_IN)
    with ledger_guards_lifted():
        run_sql("DELETE FROM transactions_transaction WHERE id = %s", [credit_leg.pk])
    out = io.StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("reconcile", stdout=out, stderr=io.StringIO())

    message = str(excinfo.value)
    assert f"reference {cross_currency_transfer.reference}" in message
    assert f"balance {credit_leg.wallet_balance_id}" in message
    assert "1 TRANSFER_OUT and 0 TRANSFER_IN legs" in out.getvalue()


def test_reconcile_fails_naming_a_transfer_whose_credit_does_not_follow_the_recorded_rate(
    cross_currency_transfer,
):
    # Both legs claim 0.95: 10.00 USD would have bought 9.50 EUR, not the 9.10 credited.
    with ledger_guards_lifted():
        run_sql(
            "UPDATE transactions_transaction SET exchange_rate = 0.95 WHERE reference = %s",
            [cross_currency_transfer.reference],
        )
    out = io.StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("reconcile", stdout=out, stderr=io.StringIO())

    assert f"reference {cross_currency_transfer.reference}" in str(excinfo.value)
    assert "0 wrong balances, 1 wrong references" in str(excinfo.value)
    assert "rounded down is 9.50" in out.getvalue()


def test_reconcile_fails_naming_a_transfer_whose_legs_do_not_point_at_each_other(cross_currency_transfer):
    stranger = funded_balance(currency="GBP", amount="0")
    with ledger_guards_lifted():
        run_sql(
            "UPDATE transactions_transaction SET related_wallet_balance_id = %s WHERE reference = %s AND type = %s",
            [stranger.pk, cross_currency_transfer.reference, TransactionType.TRANSFER_IN],
        )

    message = reconcile_failure()

    assert f"reference {cross_currency_transfer.reference}" in message


def test_reconcile_fails_naming_a_same_currency_transfer_with_unequal_legs(db):
    source = funded_balance(currency="JPY", amount="1000")
    destination = funded_balance(currency="JPY", amount="0")
    debit = transfer_create(
        from_wallet_balance_id=source.pk,
        to_wallet_balance_id=destination.pk,
        amount=Decimal("300"),
        owner=None,
        created_by=None,
    )
    with ledger_guards_lifted():
        run_sql(
            "UPDATE transactions_transaction SET amount = 301, balance_after = 301 WHERE reference = %s AND type = %s",
            [debit.reference, TransactionType.TRANSFER_IN],
        )
        run_sql("UPDATE wallets_walletbalance SET amount = 301 WHERE id = %s", [destination.pk])

    message = reconcile_failure()

    assert f"reference {debit.reference}" in message
    assert "0 wrong balances, 1 wrong references" in message


def test_reconcile_fails_naming_a_payment_refunded_beyond_its_amount(db):
    balance = funded_balance(currency="USD", amount="50.00")
    payment = payment_create(
        wallet_balance_id=balance.pk, amount=Decimal("20.00"), merchant="Shop", owner=None, created_by=None
    )
    refund = refund_create(payment_id=payment.pk, amount=None, created_by=None)
    # A second full refund forged into the chain, the balance made to agree with it.
    with ledger_guards_lifted():
        run_sql(
            "INSERT INTO transactions_transaction (id, wallet_balance_id, wallet_id, owner_id, currency_id, type, "
            "amount, balance_after, sequence, reference, source, description, merchant, created_at) "
            "SELECT gen_random_uuid(), wallet_balance_id, wallet_id, owner_id, currency_id, type, amount, "
            "balance_after + amount, sequence + 1, reference, source, description, merchant, clock_timestamp() "
            "FROM transactions_transaction WHERE id = %s",
            [refund.pk],
        )
    run_sql(
        "UPDATE wallets_walletbalance SET amount = 70, last_sequence = last_sequence + 1 WHERE id = %s", [balance.pk]
    )

    message = reconcile_failure()

    assert f"reference {payment.reference}" in message
    assert "0 wrong balances, 1 wrong references" in message


def test_reconcile_fails_naming_a_broken_chain(db):
    balance = funded_balance(currency="KWD", amount="5.000")
    payment_create(wallet_balance_id=balance.pk, amount=Decimal("1.250"), merchant="Shop", owner=None, created_by=None)
    with ledger_guards_lifted():
        run_sql(
            "UPDATE transactions_transaction SET balance_after = balance_after + 0.001 "
            "WHERE wallet_balance_id = %s AND sequence = 1",
            [balance.pk],
        )
    out = io.StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("reconcile", stdout=out, stderr=io.StringIO())

    assert f"balance {balance.pk}" in str(excinfo.value)
    assert "chain broken at sequence 1" in out.getvalue()
    assert "chain broken at sequence 2" in out.getvalue()


@pytest.mark.parametrize(
    ("table", "trigger"),
    [
        ("transactions_transaction", "transactions_ledger_immutable"),
        ("transactions_transaction", "transactions_ledger_chain"),
        ("wallets_walletbalance", "wallets_balance_chain_tip"),
        ("wallets_walletbalance", "wallets_balance_chain_tip_new"),
        ("wallets_walletbalance", "wallets_balance_keeps_ledger"),
        ("accounts_user", "accounts_user_keeps_ledger"),
    ],
)
def test_reconcile_fails_when_a_ledger_guard_is_disabled(db, table, trigger):
    run_sql("SET CONSTRAINTS ALL IMMEDIATE", [])
    run_sql(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}", [])
    try:
        message = reconcile_failure()
    finally:
        run_sql(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}", [])

    assert f"guard {trigger}" in message
