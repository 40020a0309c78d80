"""What PostgreSQL itself holds of the holds, whoever writes: reserved money within the balance, and a hold
that changes only by being captured or resolved, once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError

from tests.factories import funded_balance
from transactions.holds.services import hold_capture, hold_create, hold_void
from transactions.models import Hold
from transactions.tests.test_database_guards import run_sql

pytestmark = pytest.mark.django_db


@pytest.fixture
def hold() -> Hold:
    balance = funded_balance(amount="100.00")
    return hold_create(wallet_balance_id=balance.pk, amount=Decimal("30.00"), owner=None, created_by=None)


@pytest.mark.parametrize("held", ["-0.01", "100.01"])
def test_a_balance_never_holds_back_less_than_nothing_or_more_than_it_has(hold, held):
    with pytest.raises(IntegrityError, match="walletbalance_held_within"):
        run_sql("UPDATE wallets_walletbalance SET held_amount = %s WHERE id = %s", [held, hold.wallet_balance_id])


def test_a_debit_by_hand_below_what_is_held_is_refused(hold):
    with pytest.raises(IntegrityError, match="walletbalance_held_within"):
        run_sql("UPDATE wallets_walletbalance SET amount = 29.99 WHERE id = %s", [hold.wallet_balance_id])


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("amount", "40.00"),
        ("wallet_balance_id", None),
        ("expires_at", "2030-01-01T00:00:00Z"),
        ("merchant", "Someone else"),
        ("reference", "00000000-0000-0000-0000-000000000001"),
    ],
)
def test_what_a_hold_is_never_changes(hold, column, value):
    if column == "wallet_balance_id":
        value = funded_balance(amount="1.00").pk
    with pytest.raises(DatabaseError, match="only its status, captured amount and resolution time may change"):
        run_sql(f"UPDATE transactions_hold SET {column} = %s WHERE id = %s", [value, hold.pk])


def test_the_captured_amount_never_falls_nor_passes_the_hold(hold):
    hold_capture(hold_id=hold.pk, amount=Decimal("10.00"), final=False, owner=None, created_by=None)
    with pytest.raises(DatabaseError, match="captured amount never falls"):
        run_sql("UPDATE transactions_hold SET captured_amount = 5 WHERE id = %s", [hold.pk])
    with pytest.raises(IntegrityError, match="hold_captured_within_amount"):
        run_sql("UPDATE transactions_hold SET captured_amount = 30.01 WHERE id = %s", [hold.pk])


def test_a_resolved_hold_never_changes_again(hold):
    hold_void(hold_id=hold.pk, owner=None, created_by=None)
    for sql in (
        "UPDATE transactions_hold SET status = 'active', resolved_at = NULL WHERE id = %s",
        "UPDATE transactions_hold SET status = 'captured', captured_amount = 30 WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="is voided and can no longer change"):
            run_sql(sql, [hold.pk])


def test_a_hold_is_never_deleted(hold):
    with pytest.raises(DatabaseError, match="holds are never deleted"):
        run_sql("DELETE FROM transactions_hold WHERE id = %s", [hold.pk])


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (
            "UPDATE transactions_hold SET status = 'pending', resolved_at = clock_timestamp() WHERE id = %s",
            "hold_status_known",
        ),
        ("UPDATE transactions_hold SET status = 'voided' WHERE id = %s", "hold_resolved_when_not_active"),
        (
            "UPDATE transactions_hold SET status = 'captured', resolved_at = clock_timestamp() WHERE id = %s",
            "hold_captured_has_capture",
        ),
    ],
)
def test_a_hold_resolves_only_into_a_known_consistent_state(hold, sql, constraint):
    with pytest.raises(IntegrityError, match=constraint):
        run_sql(sql, [hold.pk])
