"""`manage.py reconcile` on holds: what balances reserve, what holds captured, and their guard."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.factories import funded_balance
from tests.holds import backdate
from transactions.holds.services import hold_capture, hold_create, hold_void
from transactions.models import Hold
from transactions.services import refund_create, withdrawal_create
from transactions.tests.test_reconcile import ledger_guards_lifted, reconcile, reconcile_failure, run_sql

pytestmark = pytest.mark.django_db


@pytest.fixture
def balance():
    return funded_balance(amount="100.00")


def place(balance, amount: str, **extra) -> Hold:
    return hold_create(wallet_balance_id=balance.pk, amount=Decimal(amount), owner=None, created_by=None, **extra)


def capture(hold: Hold, amount: str | None = None, *, final: bool = True):
    return hold_capture(
        hold_id=hold.pk, amount=None if amount is None else Decimal(amount), final=final, owner=None, created_by=None
    )


def test_reconcile_passes_after_every_kind_of_hold(balance):
    captured = place(balance, "30.00")
    capture(captured, "10.00", final=False)
    entry = capture(captured, "5.00").entry
    hold_void(hold_id=place(balance, "7.00").pk, owner=None, created_by=None)
    backdate(place(balance, "3.00", expires_in=60), 61)  # expired, unswept
    withdrawal_create(wallet_balance_id=balance.pk, amount=Decimal("1.00"), owner=None, created_by=None)  # sweeps
    place(balance, "20.00")
    refund_create(payment_id=entry.pk, amount=Decimal("5.00"), created_by=None)

    out, _ = reconcile()

    assert "OK: every invariant holds." in out


def test_reconcile_fails_naming_a_balance_whose_held_amount_disagrees_with_its_holds(balance):
    place(balance, "30.00")
    run_sql("UPDATE wallets_walletbalance SET held_amount = 20 WHERE id = %s", [balance.pk])

    message = reconcile_failure()

    assert f"balance {balance.pk}" in message


def test_reconcile_fails_naming_a_balance_due_later_than_its_earliest_hold(balance):
    place(balance, "30.00", expires_in=600)
    run_sql(
        "UPDATE wallets_walletbalance SET hold_due_at = hold_due_at + interval '1 hour' WHERE id = %s", [balance.pk]
    )

    assert f"balance {balance.pk}" in reconcile_failure()


def test_reconcile_fails_naming_a_hold_whose_captures_disagree_with_the_ledger(balance):
    hold = place(balance, "30.00")
    capture(hold, "10.00", final=False)
    run_sql("SET LOCAL session_replication_role = replica", [])
    run_sql("UPDATE transactions_hold SET captured_amount = 12 WHERE id = %s", [hold.pk])
    run_sql("SET LOCAL session_replication_role = DEFAULT", [])

    message = reconcile_failure()

    assert f"hold {hold.pk}" in message


def test_reconcile_fails_naming_captures_of_no_hold(balance):
    hold = place(balance, "30.00")
    entry = capture(hold, "10.00").entry
    stray = uuid.uuid4()
    with ledger_guards_lifted():
        run_sql("UPDATE transactions_transaction SET reference = %s WHERE id = %s", [stray, entry.pk])

    message = reconcile_failure()

    assert f"hold {hold.pk}" in message  # its capture is gone
    assert f"reference {stray}" in message  # and belongs to no hold


def test_reconcile_fails_when_the_holds_guard_is_disabled(db):
    run_sql("SET CONSTRAINTS ALL IMMEDIATE", [])
    run_sql("ALTER TABLE transactions_hold DISABLE TRIGGER transactions_hold_guard", [])
    try:
        message = reconcile_failure()
    finally:
        run_sql("ALTER TABLE transactions_hold ENABLE TRIGGER transactions_hold_guard", [])

    assert "guard transactions_hold_guard" in message
