"""The history page is read in order from the index of the column it is filtered on.

Without the leading column in ORDER BY, PostgreSQL may walk the admin's global
(created_at, id) index and skip every newer entry of other users; on a ledger
of 1,000,000 entries that made a first page 352 times slower (docs/PERFORMANCE.md).
"""

import pytest
from django.db import connection

from tests.factories import WalletFactory, funded_balance
from transactions.selectors import HistoryFilters, transaction_history


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "txn_owner_history"),
        ({"wallet": True}, "txn_wallet_history"),
        ({"balance": True}, "txn_balance_history"),
    ],
)
def test_a_history_page_is_read_from_its_own_index_without_sorting(user, filters, index):
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    history = transaction_history(
        owner=user,
        filters=HistoryFilters(
            wallet_id=balance.wallet_id if filters.get("wallet") else None,
            wallet_balance_id=balance.pk if filters.get("balance") else None,
        ),
    )

    newest_first = _plan(history.order_by("-created_at", "-id")[:51])
    oldest_first = _plan(history.order_by("created_at", "id")[:51])  # a `previous` page

    column = {"txn_owner_history": "owner_id", "txn_wallet_history": "wallet_id"}.get(index, "wallet_balance_id")
    # On a small table PostgreSQL would pick this index anyway; what keeps it from the global
    # (created_at, id) index on a large, skewed one is that only this index gives the order.
    assert history.order_by("-created_at", "-id").query.order_by[0] == column
    assert history.order_by("created_at", "id").query.order_by[0] == f"-{column}"
    for plan in (newest_first, oldest_first):
        assert index in plan, plan
        assert "Sort" not in plan, plan
    assert list(history.order_by("-created_at", "-id")) == list(balance.entries.order_by("-created_at", "-id"))
