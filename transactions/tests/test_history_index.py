"""A history page is read in order from the index of the column it is filtered on.

There must be no index on the ledger that starts with `created_at`: with the
owner constant, PostgreSQL may walk such an index for a user's history and
skip every newer entry of other users; on a ledger of 1,000,000 entries that
made a first page 350 times slower (docs/PERFORMANCE.md, "Ledger indexes fitted
to the history"). And each filter's
index starts with exactly the query's equality columns (the owner, then the
wallet or the balance): with the balance's column alone, the generic plan of
the prepared query read and sorted every entry of the balance.
"""

import pytest
from django.db import connection

from tests.factories import WalletFactory, funded_balance
from transactions.models import Transaction
from transactions.selectors import HistoryFilters, transaction_history
from wallet_project.cursors import HistoryCursor


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # On a table this small any plan is cheap; with sequential scans, bitmap scans and
        # sorts priced out, the plan shows whether an index gives this order by itself.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db
def test_no_ledger_index_starts_with_the_time_alone():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [Transaction._meta.db_table])
        indexes = cursor.fetchall()

    assert indexes
    for name, definition in indexes:
        columns = definition.split(" USING btree (", 1)[-1]
        assert not columns.startswith("created_at"), (name, definition)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "txn_owner_history"),
        ({"wallet": True}, "txn_owner_wallet_history"),
        ({"balance": True}, "txn_owner_balance_history"),
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

    for plan in (newest_first, oldest_first):
        assert index in plan, plan
        assert "Sort" not in plan, plan


@pytest.mark.django_db
@pytest.mark.parametrize("filters", [{}, {"wallet": True}, {"balance": True}], ids=["owner", "wallet", "balance"])
@pytest.mark.parametrize("backwards", [False, True], ids=["next", "previous"])
def test_a_page_after_a_cursor_is_a_range_of_an_index_without_sorting(user, filters, backwards):
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    entry = Transaction.objects.get(wallet_balance=balance)
    cursor = HistoryCursor(backwards=backwards, created_at=entry.created_at, entry_id=entry.pk)
    history = transaction_history(
        owner=user,
        filters=HistoryFilters(
            wallet_id=balance.wallet_id if filters.get("wallet") else None,
            wallet_balance_id=balance.pk if filters.get("balance") else None,
        ),
    ).filter(cursor.beyond())
    order = ("created_at", "id") if backwards else ("-created_at", "-id")

    plan = _plan(history.order_by(*order)[:51])

    index_conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert any("created_at" in line for line in index_conditions), plan
    assert "Sort" not in plan, plan
