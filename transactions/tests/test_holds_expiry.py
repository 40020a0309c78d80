"""Holds past their expiry: released by the next posting or by the sweeper (`expire_holds`), exactly once."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import funded_balance
from tests.holds import active_remainders, backdate
from tests.live import service_environment
from transactions.holds.services import hold_create, hold_void, holds_expire
from transactions.models import Hold, HoldStatus
from transactions.services import deposit_create


def place(balance, amount: str, expires_in: int = 3600) -> Hold:
    return hold_create(
        wallet_balance_id=balance.pk, amount=Decimal(amount), owner=None, created_by=None, expires_in=expires_in
    )


def deposit(balance, amount: str = "1.00") -> None:
    deposit_create(wallet_balance_id=balance.pk, amount=Decimal(amount), owner=None, created_by=None)


@pytest.mark.django_db
def test_the_sweeper_releases_only_what_has_expired_and_says_how_much():
    balance = funded_balance(amount="100.00")
    untouched = funded_balance(amount="100.00")
    old, young = place(balance, "30.00", expires_in=60), place(balance, "20.00")
    place(untouched, "5.00")
    backdate(old, 61)

    swept = holds_expire()

    assert (swept.balances, swept.holds) == (1, 1)
    old.refresh_from_db()
    assert old.status == HoldStatus.EXPIRED
    assert old.resolved_at == old.expires_at
    balance.refresh_from_db()
    assert balance.held_amount == Decimal("20.00") == active_remainders(balance)
    assert balance.hold_due_at == young.expires_at
    assert balance.amount == Decimal("100.00")  # expiry moves no money
    assert balance.last_sequence == 1
    assert holds_expire().balances == 0  # nothing more is due


@pytest.mark.django_db
def test_a_void_leaves_the_due_time_early_and_the_next_posting_corrects_it():
    balance = funded_balance(amount="100.00")
    early, late = place(balance, "10.00", expires_in=600), place(balance, "10.00", expires_in=7200)
    hold_void(hold_id=early.pk, owner=None, created_by=None)
    balance.refresh_from_db()
    assert balance.hold_due_at <= early.expires_at  # never later than the earliest expiry, may be earlier

    make_due_now(balance)
    deposit(balance)

    balance.refresh_from_db()
    assert balance.hold_due_at == late.expires_at
    assert balance.held_amount == Decimal("10.00")


def make_due_now(balance) -> None:
    """Put the balance's due time in the past, as time going by past the voided hold's expiry would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE wallets_walletbalance SET hold_due_at = clock_timestamp() - interval '1 second' WHERE id = %s",
            [balance.pk],
        )


@pytest.mark.django_db
def test_a_posting_on_a_balance_with_no_hold_due_sends_no_release():
    balance = funded_balance(amount="100.00")
    place(balance, "10.00")
    with CaptureQueriesContext(connection) as queries:
        deposit(balance)
    assert not [query for query in queries.captured_queries if "transactions_hold" in query["sql"]]


@pytest.mark.django_db
def test_expire_holds_once_reports_what_it_released():
    balance = funded_balance(amount="100.00")
    backdate(place(balance, "30.00", expires_in=60), 61)
    out = io.StringIO()

    call_command("expire_holds", stdout=out)

    assert out.getvalue().strip() == "Expired 1 hold(s)."
    balance.refresh_from_db()
    assert balance.held_amount == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_expire_holds_loop_sweeps_and_stops_on_sigterm():
    balance = funded_balance(amount="100.00")
    hold = place(balance, "30.00", expires_in=60)
    backdate(hold, 61)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "expire_holds", "--loop", "--interval", "0.2"],
        env=service_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [worker.stdout.readline().strip() for _ in range(2)]
        worker.send_signal(signal.SIGTERM)
        rest, errors = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert lines[1] == "Expired 1 hold(s).", (lines, errors)
    assert rest.strip().endswith("Stopped.")
    assert worker.returncode == 0
    hold.refresh_from_db()
    assert hold.status == HoldStatus.EXPIRED


@pytest.mark.django_db
def test_a_hold_lives_its_whole_lifetime_from_when_it_is_written_and_its_balance_is_due_no_later():
    balance = funded_balance(amount="100.00")

    hold = place(balance, "10.00", expires_in=1)

    balance.refresh_from_db()
    assert hold.expires_at > hold.created_at
    assert balance.hold_due_at <= hold.expires_at
