"""Faults caused for real: Redis stopped, a database backend terminated, a lock expiring, a worker killed.

Each test causes the fault against real processes (a private redis-server, a
live gunicorn, PostgreSQL backends, a Python worker process) and then checks
the contract's promise: a clean error, nothing half-written in balances or
ledger, and locks that free themselves.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connections

from conftest import client_for
from tests.factories import PASSWORD, UserFactory, WalletFactory, funded_balance
from tests.live import (
    BASE_DIR,
    PYTHON,
    access_token,
    backend_alive,
    backends_blocked_by,
    live_gunicorn,
    private_redis,
    row_lock_held,
    service_environment,
    sql_connection,
    stop_process_group,
    terminate_backend,
    wait_until,
)
from transactions.models import Transaction
from wallets.locks import lock_name
from wallets.models import WalletBalance

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

API = "/api/v1"


def ledger_state(*balances: WalletBalance) -> dict[Any, Any]:
    """Amount, last sequence and every ledger entry of these balances, as committed."""
    state = {}
    for balance in balances:
        row = WalletBalance.objects.get(pk=balance.pk)
        entries = list(
            Transaction.objects.filter(wallet_balance_id=balance.pk)
            .order_by("sequence")
            .values_list("id", "type", "amount", "sequence", "balance_after")
        )
        state[balance.pk] = (row.amount, row.last_sequence, entries)
    return state


def lock_store() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def run_in_thread(target) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `target` in a thread with its own database connection; its return value lands in result["value"]."""
    result: dict[str, Any] = {}

    def body() -> None:
        try:
            result["value"] = target()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, result


# --- 1. Redis stopped while the service runs --------------------------------------------------

# Short lock timings in the live server, so that a lock left behind by the outage frees itself quickly.
LIVE_LOCKS = {"LOCK_WAIT_SECONDS": "1", "LOCK_EXPIRE_SECONDS": "2"}


def eventually_created(send, *, timeout: float, tolerated: set[tuple[int, str]]):
    """Send until 201; anything else must be one of the `tolerated` (status, code) answers meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        reply = send()
        if reply.status == HTTPStatus.CREATED:
            return reply
        assert (reply.status, reply.error_code) in tolerated, (reply.status, reply.body)
        assert time.monotonic() < deadline, f"no 201 within {timeout}s: {reply.status} {reply.body}"
        time.sleep(0.2)


@pytest.mark.parametrize("outage", ["killed", "hung"])
def test_with_redis_down_movements_answer_503_at_once_and_reads_and_login_keep_working(outage):
    user = UserFactory()
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    other = funded_balance(amount="0.00", wallet=WalletFactory(owner=user))
    token = access_token(user)
    deposit = {"wallet_balance_id": str(balance.pk), "amount": "5.00"}
    transfer = {"from_wallet_balance_id": str(balance.pk), "to_wallet_balance_id": str(other.pk), "amount": "5.00"}
    movements = [
        ("deposit", deposit),
        ("withdraw", deposit),
        ("payment", {**deposit, "merchant": "Shop"}),
        ("transfer", transfer),
    ]

    with private_redis() as redis_server, live_gunicorn(REDIS_URL=redis_server.url(0), **LIVE_LOCKS) as server:
        api = server.http
        # Both workers serve a few requests first, so that what is measured below is the outage,
        # not a worker's first request; 4 × 1.00 deposited.
        with ThreadPoolExecutor(4) as pool:
            warm_up = list(
                pool.map(
                    lambda _: api.post(f"{API}/transactions/deposit/", {**deposit, "amount": "1.00"}, token=token),
                    range(4),
                )
            )
        assert [reply.status for reply in warm_up] == [HTTPStatus.CREATED] * 4, [r.body for r in warm_up]
        before = ledger_state(balance, other)

        if outage == "killed":
            redis_server.stop()
        else:
            redis_server.pause()
        try:
            # Several rounds, so that both workers meet the outage (and their pooled connections break).
            for round_number in range(2):
                for endpoint, body in movements:
                    for headers in ({}, {"Idempotency-Key": f"outage-{endpoint}-{round_number}"}):
                        reply = api.post(f"{API}/transactions/{endpoint}/", body, token=token, headers=headers)
                        assert reply.status == HTTPStatus.SERVICE_UNAVAILABLE, (endpoint, reply.body)
                        assert reply.error_code == "service_unavailable"
                        # The contract: answered in under a second, not after redis-py's timeouts and retries.
                        assert reply.elapsed < 1.0, (endpoint, reply.elapsed)
            assert ledger_state(balance, other) == before

            # Reads only need the database.
            for path in (
                f"{API}/wallets/",
                f"{API}/wallets/{balance.wallet_id}/",
                f"{API}/balances/{balance.pk}/",
                f"{API}/transactions/",
                f"{API}/transactions/?wallet_balance_id={balance.pk}",
                f"{API}/wallets/{balance.wallet_id}/total-balance/?currency=EUR",
                f"{API}/currencies/",
                f"{API}/auth/me/",
            ):
                reply = api.get(path, token=token)
                assert reply.status == HTTPStatus.OK, (path, reply.body)
            assert api.get(f"{API}/balances/{balance.pk}/", token=token).body["amount"] == "104.00"

            # Logging in and refreshing do not need Redis either.
            login = api.post(f"{API}/auth/token/", {"email": user.email, "password": PASSWORD})
            assert login.status == HTTPStatus.OK, login.body
            assert api.get(f"{API}/auth/me/", token=login.body["access"]).status == HTTPStatus.OK
            refreshed = api.post(f"{API}/auth/token/refresh/", {"refresh": login.body["refresh"]})
            assert refreshed.status == HTTPStatus.OK, refreshed.body

            ready = api.get("/ready/")
            assert ready.status == HTTPStatus.SERVICE_UNAVAILABLE
            assert ready.body["error"]["details"]["failed"] == ["redis"]
            assert ready.elapsed < 1.0
        finally:
            if outage == "hung":
                redis_server.resume()
        if outage == "killed":
            redis_server.start()  # same port, empty: gunicorn is not restarted

        # A 503 is not stored under its Idempotency-Key: the retry is carried out. A hung Redis may
        # still run the lock commands it received before it froze, after their clients gave up: such
        # a late lock has no holder and frees itself by expiry; meanwhile the answers are clean.
        retried = eventually_created(
            lambda: api.post(
                f"{API}/transactions/deposit/", deposit, token=token, headers={"Idempotency-Key": "outage-deposit-0"}
            ),
            timeout=int(LIVE_LOCKS["LOCK_EXPIRE_SECONDS"]) + 3,
            tolerated=set()
            if outage == "killed"
            else {(HTTPStatus.CONFLICT, "idempotency_in_progress"), (HTTPStatus.TOO_MANY_REQUESTS, "lock_timeout")},
        )
        assert retried.headers.get("idempotent-replayed") is None
        for _ in range(4):  # every worker is back
            reply = api.post(f"{API}/transactions/transfer/", transfer, token=token)
            assert reply.status == HTTPStatus.CREATED, reply.body
        assert api.get("/ready/").status == HTTPStatus.OK

    balance.refresh_from_db()
    other.refresh_from_db()
    assert balance.amount == Decimal("89.00")  # 100 + 4 × 1 + 5 - 4 × 5
    assert other.amount == Decimal("20.00")
    assert balance.entries.count() == 1 + 4 + 1 + 4


# --- 2. The database connection lost in the middle of a movement -----------------------------


@pytest.mark.parametrize("moment", ["waiting_for_row_lock", "after_writes_before_commit"])
def test_database_connection_lost_mid_movement_answers_503_and_writes_nothing(moment):
    user = UserFactory()
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    before = ledger_state(balance)
    key = f"lost-connection-{moment}"
    body = {"wallet_balance_id": str(balance.pk), "amount": "30.00"}

    def withdraw():
        return client_for(user).post(f"{API}/transactions/withdraw/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)

    holder = sql_connection(autocommit=False)
    try:
        if moment == "waiting_for_row_lock":
            # The movement holds its Redis lock and waits in its transaction for the row.
            holder.execute("SELECT id FROM wallets_walletbalance WHERE id = %s FOR UPDATE", [balance.pk])
        else:
            # The movement has updated the balance and inserted its ledger entry, and now waits to insert
            # its idempotency record behind this uncommitted one with the same key.
            holder.execute(
                "INSERT INTO transactions_idempotencyrecord"
                " (user_id, key, endpoint, fingerprint, status_code, response_body, created_at, expires_at)"
                " VALUES (%s, %s, 'blocker', 'blocker', 201, '{}', now(), now() + interval '1 day')",
                [user.pk, key],
            )
        thread, result = run_in_thread(withdraw)
        (pid,) = wait_until(lambda: backends_blocked_by(holder), timeout=10, what="the movement to block")
        with sql_connection() as observer:
            (query,) = observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        if moment == "after_writes_before_commit":
            assert "transactions_idempotencyrecord" in query, query
        else:
            assert "FOR NO KEY UPDATE" in query, query
        assert lock_store().exists(f"lock:{lock_name(balance.pk)}")

        terminate_backend(pid)
        thread.join(timeout=10)
        assert not thread.is_alive()
    finally:
        holder.rollback()
        holder.close()

    assert "error" not in result, result.get("error")
    reply = result["value"]
    assert reply.status_code == HTTPStatus.SERVICE_UNAVAILABLE, reply.content
    assert reply.json()["error"]["code"] == "service_unavailable"
    assert ledger_state(balance) == before
    assert not lock_store().exists(f"lock:{lock_name(balance.pk)}")

    # Nothing was stored under the key either: the client's retry is carried out, once.
    retry = withdraw()
    assert retry.status_code == HTTPStatus.CREATED, retry.json()
    replay = withdraw()
    assert replay.status_code == HTTPStatus.CREATED
    assert replay.headers["Idempotent-Replayed"] == "true"
    balance.refresh_from_db()
    assert balance.amount == Decimal("70.00")
    assert balance.entries.count() == 2


# --- 3. A Redis lock that expires while its holder's transaction still runs -------------------


def test_lock_expiring_under_a_slow_movement_is_fenced_by_the_row_lock(settings):
    settings.LOCK_WAIT_SECONDS = 1
    settings.LOCK_EXPIRE_SECONDS = 2
    from wallets import locks

    locks.reset_backend()
    user = UserFactory()
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    lock_key = f"lock:{lock_name(balance.pk)}"
    cache = lock_store()

    def withdraw_everything():
        return client_for(user).post(
            f"{API}/transactions/withdraw/", {"wallet_balance_id": str(balance.pk), "amount": "100.00"}, format="json"
        )

    with row_lock_held("wallets_walletbalance", balance.pk) as holder:
        first, first_result = run_in_thread(withdraw_everything)
        wait_until(lambda: len(backends_blocked_by(holder)) == 1, timeout=10, what="the first withdrawal to block")
        first_token = cache.get(lock_key)
        assert first_token is not None
        # The first withdrawal's Redis lock expires while its transaction still waits.
        wait_until(lambda: cache.get(lock_key) != first_token, timeout=5, what="the lock to expire")

        second, second_result = run_in_thread(withdraw_everything)
        # The second one took the Redis lock and reached the database: only the row lock stands between them.
        wait_until(lambda: len(backends_blocked_by(holder)) == 2, timeout=10, what="the second withdrawal to block")
        assert cache.get(lock_key) not in (None, first_token)

    first.join(timeout=10)
    second.join(timeout=10)
    assert "error" not in first_result and "error" not in second_result, (first_result, second_result)
    replies = [first_result["value"], second_result["value"]]
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [HTTPStatus.CREATED, HTTPStatus.UNPROCESSABLE_ENTITY], [r.content for r in replies]
    refused = next(reply for reply in replies if reply.status_code == HTTPStatus.UNPROCESSABLE_ENTITY)
    assert refused.json()["error"]["code"] == "insufficient_funds"

    balance.refresh_from_db()
    assert balance.amount == Decimal("0.00")
    assert list(balance.entries.order_by("sequence").values_list("type", "balance_after")) == [
        ("DEPOSIT", Decimal("100.00")),
        ("WITHDRAWAL", Decimal("0.00")),
    ]
    # The first holder's late release did not delete the second holder's lock; both are gone now.
    assert not cache.exists(lock_key)


# --- 4. A worker killed in the middle of a movement --------------------------------------------

WORKER = """
import sys, time
from decimal import Decimal

import django

django.setup()

from django.db import connection

from transactions.services import withdrawal_create

moment, balance_id = sys.argv[1], sys.argv[2]
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    print("PID", cursor.fetchone()[0], flush=True)


def stall(entry):
    # Inside the movement's transaction, after its balance update and ledger insert.
    print("BOOKED", flush=True)
    time.sleep(3600)


withdrawal_create(
    wallet_balance_id=balance_id,
    amount=Decimal("40.00"),
    owner=None,
    created_by=None,
    on_booked=stall if moment == "after_writes_before_commit" else None,
)
print("DONE", flush=True)
"""

WORKER_LOCK_EXPIRE_SECONDS = 3


@pytest.mark.parametrize("moment", ["waiting_for_row_lock", "after_writes_before_commit"])
def test_worker_killed_mid_movement_leaves_nothing_half_written_and_its_lock_expires(moment):
    user = UserFactory()
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    before = ledger_state(balance)
    lock_key = f"lock:{lock_name(balance.pk)}"
    cache = lock_store()
    env = service_environment(LOCK_EXPIRE_SECONDS=str(WORKER_LOCK_EXPIRE_SECONDS), LOCK_WAIT_SECONDS="1")

    holder = sql_connection(autocommit=False)
    worker = None
    try:
        if moment == "waiting_for_row_lock":
            holder.execute("SELECT id FROM wallets_walletbalance WHERE id = %s FOR UPDATE", [balance.pk])
        worker = subprocess.Popen(
            [PYTHON, "-c", WORKER, moment, str(balance.pk)],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line.strip()) for line in worker.stdout], daemon=True).start()

        def next_line() -> str:
            try:
                return lines.get(timeout=20)
            except queue.Empty:
                raise AssertionError("the worker said nothing") from None

        first_line = next_line()
        assert first_line.startswith("PID "), first_line
        pid = int(first_line.split()[1])
        if moment == "waiting_for_row_lock":
            wait_until(lambda: backends_blocked_by(holder) == [pid], timeout=10, what="the worker to block")
        else:
            assert next_line() == "BOOKED"
        assert cache.exists(lock_key)

        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        # The lock outlives its holder; it frees itself by expiry, not by anyone's release.
        ttl = cache.pttl(lock_key)
        assert 0 < ttl <= WORKER_LOCK_EXPIRE_SECONDS * 1000, ttl
        killed_at = time.monotonic()
    finally:
        holder.rollback()
        holder.close()
        if worker is not None:
            stop_process_group(worker, grace=1)

    # PostgreSQL notices the dead client and rolls its transaction back.
    wait_until(lambda: not backend_alive(pid), timeout=10, what="the dead worker's backend to go")
    assert ledger_state(balance) == before

    wait_until(lambda: not cache.exists(lock_key), timeout=ttl / 1000 + 2, what="the lock to expire")
    assert time.monotonic() - killed_at <= ttl / 1000 + 1

    reply = client_for(user).post(
        f"{API}/transactions/withdraw/", {"wallet_balance_id": str(balance.pk), "amount": "40.00"}, format="json"
    )
    assert reply.status_code == HTTPStatus.CREATED, reply.json()
    assert reply.json()["sequence"] == 2
    balance.refresh_from_db()
    assert balance.amount == Decimal("60.00")
