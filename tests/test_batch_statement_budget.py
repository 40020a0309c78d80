"""SQL statements and Redis round trips of a batch: a few multi-row statements, whatever its size.

Counted as tests/test_statement_budget.py counts a single transfer (BEGIN,
COMMIT, SAVEPOINT and RELEASE are not counted). A batch of transfers between
balances this process has not read yet: the fresh read before the locks (every
balance, one statement), the locked read, then the entries' INSERT, whose WITH
updates every balance first and writes every movement's events: 3, the same
for 10 transfers as for 100, whatever the number of
times a balance is touched. The Redis locks of every balance are taken in one
script call and released in another.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import client_for
from loyalty.models import Reward
from tests.factories import WalletFactory, funded_balance
from tests.invariants import assert_ledger_invariants
from tests.loyalty import program_in
from tests.test_statement_budget import _statements
from transactions.posting import facts

BATCH = 3  # fresh read, locked read, the INSERT with the UPDATE in its WITH

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def many_balances(user, other_user):
    """20 balances of the caller's and 20 of someone else's."""
    sources = [funded_balance(amount="1000.00", wallet=WalletFactory(owner=user)) for _ in range(20)]
    destinations = [funded_balance(amount="0", wallet=WalletFactory(owner=other_user)) for _ in range(20)]
    return sources, destinations


def _batch(sources, destinations, count):
    """`count` transfers, each balance touched count / 20 times on either side."""
    return {
        "movements": [
            {
                "type": "transfer",
                "from_wallet_balance_id": str(sources[k % len(sources)].pk),
                "to_wallet_balance_id": str(destinations[(k * 7) % len(destinations)].pk),
                "amount": "1.00",
            }
            for k in range(count)
        ]
    }


@pytest.mark.parametrize("count", [10, 100])
def test_a_batch_of_transfers_runs_the_same_few_statements_whatever_its_size(user, many_balances, count):
    sources, destinations = many_balances
    facts.kept.clear()  # the balances are read afresh, as a worker that never saw them would
    client = client_for(user)

    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/v1/transactions/batch/", _batch(sources, destinations, count), format="json")

    assert response.status_code == HTTPStatus.CREATED, response.json()
    statements = _statements(captured)
    assert len(statements) <= BATCH, "\n".join(statements)
    # One UPDATE writes every balance once, however often the batch moved it, from one array per column.
    (write,) = [sql for sql in statements if sql.startswith("WITH balances AS (UPDATE")]
    assert write.count("UPDATE wallets_walletbalance") == 1
    assert "unnest" in write.split(") AS moved")[0]
    assert_ledger_invariants([balance.pk for balance in (*sources, *destinations)])


def test_a_mixed_batch_with_conversions_and_cashback_adds_no_statement(user, many_balances):
    """Payments earning cashback (their rewards ride in the entries' INSERT) and transfers between two currencies
    (the rates ride in the reads) cost no statement of their own."""
    sources, destinations = many_balances
    euros = [funded_balance(currency="EUR", amount="0", wallet=WalletFactory(owner=user)) for _ in range(5)]
    program_in("USD")
    facts.kept.clear()
    movements = []
    for k in range(100):
        source = str(sources[k % len(sources)].pk)
        kind = ("deposit", "withdraw", "payment", "transfer", "transfer")[k % 5]
        if kind == "transfer":
            destination = euros[k % len(euros)] if k % 2 else destinations[k % len(destinations)]
            movements.append(
                {
                    "type": kind,
                    "from_wallet_balance_id": source,
                    "to_wallet_balance_id": str(destination.pk),
                    "amount": "2.00",
                }
            )
        else:
            movements.append({"type": kind, "wallet_balance_id": source, "amount": "1.00", "merchant": "Shop"})
    client = client_for(user)

    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/v1/transactions/batch/", {"movements": movements}, format="json")

    assert response.status_code == HTTPStatus.CREATED, response.json()
    entries = response.json()["entries"]
    assert sum(1 for entry in entries if entry["exchange_rate"] is not None) == 20
    assert all(entry["loyalty"]["status"] == "pending" for entry in entries if entry["type"] == "PAYMENT")
    assert Reward.objects.count() == 20
    statements = _statements(captured)
    assert len(statements) <= BATCH, "\n".join(statements)
    assert_ledger_invariants()


def test_a_batch_of_a_hundred_transfers_makes_two_redis_round_trips(user, many_balances, monkeypatch):
    sources, destinations = many_balances
    client = client_for(user)
    sent = []
    send_command = redis.connection.AbstractConnection.send_command

    def counted(connection, *args, **kwargs):
        sent.append(args[0])
        return send_command(connection, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", counted)
    response = client.post("/api/v1/transactions/batch/", _batch(sources, destinations, 100), format="json")

    assert response.status_code == HTTPStatus.CREATED, response.json()
    # DRF's throttle counts the request, then the locks of all 40 balances are taken in one call and released
    # in one.
    assert sent == ["EVALSHA", "EVALSHA", "EVALSHA"]
