"""The service behind pgbouncer in transaction pooling, as `DB_TRANSACTION_POOLING=true` configures it.

A pgbouncer of the test's own (`tests/pgbouncer.py`) stands in front of the
test database with fewer server connections than the threads have clients,
and every connection Django opens meanwhile goes through it. The concurrency
suite's core cases (tests/test_concurrency.py) run through it unchanged and
must hold exactly as they do on a direct connection: the row locks (`FOR NO
KEY UPDATE`), the durable atomic block and the idempotency records do not
depend on which server connection a transaction gets. pgbouncer's own
counters prove that the traffic went through it.

Beside them: why prepared statements must be off behind a pooler that does
not keep them, the health check of a persistent connection through the
pooler, and session settings that stay with their client.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.invariants import assert_ledger_invariants, run_in_threads, unexpected
from tests.live import BASE_DIR, PYTHON, database_url_of_tests, free_port, service_environment, wait_until
from tests.pgbouncer import PgBouncer, django_through, pooled_database_settings, running_pgbouncer

# The concurrency suite's core cases, run here as they are through the pooler (not collected twice:
# these names do not start with test_).
from tests.test_concurrency import (
    test_a_random_mix_of_movements_conserves_money_to_the_cent as random_mix_case,
)
from tests.test_concurrency import (
    test_concurrent_withdrawals_beyond_the_balance_never_overdraw_it as withdrawals_case,
)
from tests.test_concurrency import (
    test_concurrent_withdrawals_through_the_api_never_overdraw_the_balance as api_withdrawals_case,
)
from tests.test_concurrency import (
    test_opposite_transfers_between_one_pair_finish_without_deadlock as opposite_transfers_case,
)
from tests.test_concurrency import (
    test_without_redis_locks_the_row_lock_still_prevents_a_double_spend as row_lock_fence_case,
)
from transactions.models import IdempotencyRecord, Transaction, TransactionSource, TransactionType

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Fewer server connections than the cases have threads (50, 16, 6), so that clients share them.
POOL_SIZE = 8


@pytest.fixture(autouse=True)
def _no_throttling(settings: Any) -> None:
    settings.THROTTLE_USER_RATE = settings.THROTTLE_ANON_RATE = "1000000/minute"


@pytest.fixture
def bouncer() -> Any:
    with running_pgbouncer(pool_size=POOL_SIZE) as running:
        yield running


@pytest.fixture
def through_bouncer(bouncer: PgBouncer) -> Any:
    """Django reaches the test database through `bouncer` for the whole test, every thread included."""
    with django_through(bouncer):
        yield bouncer


def _went_through(bouncer: PgBouncer, before: dict[str, int], *, at_least: int) -> None:
    """pgbouncer passed on at least `at_least` more transactions, and never opened more server connections
    than its pool has."""
    after = bouncer.totals()
    assert after["transactions"] - before["transactions"] >= at_least, (before, after)
    servers = [row for row in bouncer.show("SERVERS") if row["database"] == bouncer.database]
    assert 0 < len(servers) <= POOL_SIZE, servers


def _movements() -> int:
    return Transaction.objects.exclude(source=TransactionSource.SEED).count()


# --- the concurrency suite's core cases ------------------------------------------------------


def test_fifty_concurrent_withdrawals_through_pgbouncer_never_overdraw(through_bouncer: PgBouncer) -> None:
    before = through_bouncer.totals()

    withdrawals_case()

    assert connection.settings_dict["PORT"] == str(through_bouncer.port)
    _went_through(through_bouncer, before, at_least=_movements())


def test_fifty_concurrent_api_withdrawals_through_pgbouncer_never_overdraw(through_bouncer: PgBouncer) -> None:
    before = through_bouncer.totals()

    api_withdrawals_case()

    _went_through(through_bouncer, before, at_least=_movements())


@pytest.mark.parametrize("redis_locks", [True, False], ids=["redis-and-row-locks", "row-locks-only"])
def test_opposite_transfers_through_pgbouncer_finish_without_deadlock(
    through_bouncer: PgBouncer, redis_locks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = through_bouncer.totals()

    opposite_transfers_case(redis_locks=redis_locks, monkeypatch=monkeypatch)

    transfers = Transaction.objects.filter(type=TransactionType.TRANSFER_OUT).count()
    _went_through(through_bouncer, before, at_least=transfers)


def test_without_redis_locks_the_row_lock_through_pgbouncer_still_prevents_a_double_spend(
    through_bouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = through_bouncer.totals()

    row_lock_fence_case(monkeypatch)

    _went_through(through_bouncer, before, at_least=1)


def test_a_random_mix_through_pgbouncer_conserves_money_to_the_cent(through_bouncer: PgBouncer) -> None:
    before = through_bouncer.totals()

    random_mix_case()

    _went_through(through_bouncer, before, at_least=_movements())


def test_concurrent_retries_of_one_idempotency_key_through_pgbouncer_move_the_money_once(
    through_bouncer: PgBouncer,
) -> None:
    user = UserFactory()
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    authorization = f"Bearer {AccessToken.for_user(user)}"
    body = {"wallet_balance_id": str(balance.pk), "amount": "7.00"}
    before = through_bouncer.totals()

    def withdraw(_: int) -> Any:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=authorization)
        return client.post("/api/v1/transactions/withdraw/", body, format="json", HTTP_IDEMPOTENCY_KEY="once")

    outcomes = run_in_threads(withdraw, 12)

    assert unexpected(outcomes) == []
    responses = [outcome.result for outcome in outcomes]
    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {HTTPStatus.CREATED, HTTPStatus.CONFLICT}, statuses
    assert {r.json()["error"]["code"] for r in responses if r.status_code == HTTPStatus.CONFLICT} <= {
        "idempotency_in_progress"
    }
    created = [r for r in responses if r.status_code == HTTPStatus.CREATED]
    originals = [r for r in created if "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1, [r.headers.get("Idempotent-Replayed") for r in created]
    assert {r.content for r in created} == {originals[0].content}  # replays are the answer, byte for byte
    # Once the first has finished, a retry replays it too.
    retry = withdraw(0)
    assert retry.status_code == HTTPStatus.CREATED and retry["Idempotent-Replayed"] == "true"
    assert retry.content == originals[0].content
    balance.refresh_from_db()
    assert balance.amount == Decimal("93.00")
    assert Transaction.objects.filter(wallet_balance=balance, type=TransactionType.WITHDRAWAL).count() == 1
    assert IdempotencyRecord.objects.filter(user=user, key="once").count() == 1
    assert_ledger_invariants([balance.pk])
    _went_through(through_bouncer, before, at_least=1)


# --- what a transaction pooler needs of the settings ---------------------------------------


def test_prepared_statements_break_behind_a_pooler_that_does_not_keep_them_and_the_pooled_settings_prepare_none(
    bouncer: PgBouncer,
) -> None:
    """With one server connection for two clients, the second client's first prepared statement meets the
    first client's of the same name on the server: the reason `DB_TRANSACTION_POOLING` turns them off."""
    prepared = pooled_database_settings(bouncer, DB_PREPARED_STATEMENTS="true")["OPTIONS"]
    assert prepared["server_side_binding"] is True and prepared["prepare_threshold"] == 5
    with running_pgbouncer(pool_size=1) as single:
        first, second = single.connect(autocommit=True), single.connect(autocommit=True)
        try:
            for client in (first, second):
                client.prepare_threshold = 0  # prepare at once: what psycopg does after five runs
            first.execute("SELECT %s::int", [1])
            with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
                second.execute("SELECT %s::int", [1])
        finally:
            first.close()
            second.close()

    pooled = pooled_database_settings(bouncer)
    assert "server_side_binding" not in pooled["OPTIONS"] and "prepare_threshold" not in pooled["OPTIONS"]
    assert pooled["DISABLE_SERVER_SIDE_CURSORS"] is True
    with django_through(bouncer):
        # Django's backend then binds on the client and prepares nothing, however often a query runs.
        assert connection.get_connection_params()["prepare_threshold"] is None
        for _ in range(20):
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM wallets_currency WHERE code = %s", ["USD"])
                assert cursor.fetchone() == (1,)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements")
            assert cursor.fetchone() == (0,)


def test_a_persistent_connection_through_pgbouncer_outlives_its_server_connections(
    through_bouncer: PgBouncer,
) -> None:
    """Between two requests PostgreSQL ends every server connection (a restart, an idle timeout). The
    client's socket to pgbouncer stays quiet, so the per-request health check keeps the connection without
    a round trip, and its next query gets a new server connection from the pooler: no error."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (first_backend,) = cursor.fetchone()
    held = connection.connection
    with psycopg.connect(
        host="127.0.0.1", port=5432, dbname=through_bouncer.database, user=through_bouncer.user, autocommit=True
    ) as direct:
        ended = direct.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert ended is not None and ended[0] >= 1
    # pgbouncer drops a server connection once it has read the server's goodbye.
    wait_until(
        lambda: not [row for row in through_bouncer.show("SERVERS") if row["database"] == through_bouncer.database],
        timeout=10,
        what="pgbouncer to drop the terminated server connections",
    )

    # The next request's check (Django calls it when a request starts).
    connection.health_check_done = False
    connection.close_if_health_check_failed()

    assert connection.connection is held
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (second_backend,) = cursor.fetchone()
    assert second_backend != first_backend


def test_another_clients_session_setting_does_not_reach_djangos_transactions_through_pgbouncer(
    through_bouncer: PgBouncer,
) -> None:
    """Django sets the session's time zone when it connects; in transaction pooling that SET ran on one
    server connection, and pgbouncer re-applies it (a parameter it tracks) wherever the client's later
    transactions run, even on a server connection another client left in another zone."""
    with through_bouncer.connect(autocommit=True, prepare_threshold=None) as other:
        other.execute("SET TIME ZONE 'Asia/Tokyo'")
        for _ in range(3 * POOL_SIZE):
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('TimeZone')")
                assert cursor.fetchone() == ("UTC",)
            other.execute("SELECT 1")
        assert other.execute("SELECT current_setting('TimeZone')").fetchone() == ("Asia/Tokyo",)


# --- Compose and the container's entrypoint ---------------------------------------------------


def test_compose_sends_every_app_container_through_pgbouncer_in_transaction_pooling() -> None:
    services = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"]

    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    assert services["web"]["depends_on"]["pgbouncer"] == {"condition": "service_healthy"}
    for name in ("web", "holds-sweeper", "webhooks-worker", "loyalty-booker"):
        environment = services[name]["environment"]
        assert "@pgbouncer:5432/" in environment["DATABASE_URL"], name
        assert environment["DB_TRANSACTION_POOLING"] == "true", name
        assert "DB_PREPARED_STATEMENTS" not in environment, name
    # The entrypoint's migrate goes straight to PostgreSQL.
    assert "@db:5432/" in services["web"]["environment"]["MIGRATE_DATABASE_URL"]


def test_the_entrypoint_migrates_on_the_direct_connection_when_one_is_given() -> None:
    environment = service_environment(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",  # where nothing answers
        MIGRATE_DATABASE_URL=database_url_of_tests(),
        DB_TRANSACTION_POOLING="true",
        MIGRATE_ON_START="1",
        PATH=f"{Path(PYTHON).parent}{os.pathsep}{os.environ['PATH']}",
    )
    shown = "import os; print(os.environ['DATABASE_URL'], os.environ['DB_TRANSACTION_POOLING'])"

    result = subprocess.run(
        ["sh", str(BASE_DIR / "docker" / "entrypoint.sh"), "python", "-c", shown],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No migrations to apply" in result.stdout
    # Then the command itself runs with the service's own settings: through the pooler.
    assert result.stdout.strip().splitlines()[-1] == f"{environment['DATABASE_URL']} true"
