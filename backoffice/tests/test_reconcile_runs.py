"""Every `manage.py reconcile` leaves its outcome for the back office: passed, failed or stopped by an error."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from backoffice.models import ReconcileRun
from tests.factories import funded_balance
from transactions.tests.test_reconcile import ledger_guards_lifted
from wallets.models import WalletBalance

pytestmark = pytest.mark.django_db


def reconcile(**options: object) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("reconcile", stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_a_passing_run_is_recorded_ok_with_its_summary():
    funded_balance(amount="10.00")

    out, _ = reconcile()

    run = ReconcileRun.objects.get()
    assert run.ok is True
    assert run.problem_count == 0
    assert run.summary.startswith("Reconciled 1 balances and 1 ledger entries")
    assert run.summary in out
    assert run.started_at <= run.finished_at


def test_a_failing_run_is_recorded_failed_with_what_it_named():
    balance = funded_balance(amount="10.00")
    # A balance that disagrees with its chain, forged past the guard that checks a balance against its tip.
    with ledger_guards_lifted(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {WalletBalance._meta.db_table} SET amount = amount + 1 WHERE id = %s",
            [balance.pk],
        )

    with pytest.raises(CommandError) as failure:
        reconcile()

    run = ReconcileRun.objects.get()
    assert run.ok is False
    assert run.problem_count >= 1
    assert str(balance.pk) in run.summary
    assert run.summary.splitlines()[-1] == str(failure.value)


def test_a_run_stopped_by_an_error_is_recorded_failed_with_the_error():
    with pytest.raises(ValueError):
        reconcile(chunk_size=0)  # the ledger's cursor refuses it half-way through

    run = ReconcileRun.objects.get()
    assert run.ok is False
    assert run.summary.startswith("Reconcile stopped: ValueError")


def test_a_database_that_refuses_the_record_costs_a_warning_not_the_answer():
    funded_balance(amount="10.00")
    with connection.cursor() as cursor:
        # The deposit's deferred foreign-key checks run now, before the transaction turns read-only.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET TRANSACTION READ ONLY")  # as on a read-only replica

    out, err = reconcile()

    assert "OK: every invariant holds." in out
    assert "The outcome was not recorded for the back office" in err
    assert not ReconcileRun.objects.exists()
