"""Helpers for the holds' tests: moving a hold back in time, and reading what a balance reserves."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Sum

from transactions.models import Hold, HoldStatus
from wallets.models import WalletBalance


def backdate(hold: Hold, seconds: float) -> None:
    """Move a hold (its creation and its expiry) `seconds` into the past, as if that much time had gone by.

    The holds' guard refuses any change to `expires_at`, rightly; the test
    turns the triggers off for its own statements only (a superuser's
    `session_replication_role`, set back before it returns). The balance's
    `hold_due_at` follows, as the engine keeps it.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        try:
            cursor.execute(
                "UPDATE transactions_hold SET created_at = created_at - make_interval(secs => %s),"
                " expires_at = expires_at - make_interval(secs => %s) WHERE id = %s",
                [seconds, seconds, hold.pk],
            )
            cursor.execute(
                "UPDATE wallets_walletbalance SET hold_due_at = (SELECT min(expires_at) FROM transactions_hold"
                " WHERE wallet_balance_id = %s AND status = 'active') WHERE id = %s",
                [hold.wallet_balance_id, hold.wallet_balance_id],
            )
        finally:
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    hold.refresh_from_db()


def active_remainders(balance: WalletBalance) -> Decimal:
    """What the balance's holds with status `active` reserve, by the holds themselves."""
    total = Hold.objects.filter(wallet_balance=balance, status=HoldStatus.ACTIVE).aggregate(
        total=Sum(F("amount") - F("captured_amount"))
    )["total"]
    return total or Decimal(0)
