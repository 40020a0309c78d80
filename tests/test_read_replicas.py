"""Read replicas for real: a primary and a streaming replica made with initdb and pg_basebackup, the service in
gunicorn against both, and the replica's replay paused, left behind, stopped and started again.

Pausing the replica's replay (`pg_wal_replay_pause()`) makes it stale on purpose: a deposit committed on the
primary is then missing from the replica (the tests check that with SQL on each server), so an answer that
lacks it can only have come from the replica, and one that shows it from the primary.

Two services share the cluster and a private Redis: `loose` allows a replica 600 s of lag, `strict` one
second. Both remember a user's writes for `STICKY` seconds. Each gunicorn has one worker, so one process
makes every check. Every test leaves the cluster replaying, running and caught up.
"""

from __future__ import annotations

import csv
import http.client
import io
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import pytest
import redis

from tests.live import (
    BASE_DIR,
    PYTHON,
    Http,
    LiveServer,
    RedisServer,
    live_gunicorn,
    private_redis,
    service_environment,
    wait_until,
)
from tests.replication import Replication, replication_cluster, require_programs
from wallet_project.replicas.recent_writes import key_of

pytestmark = pytest.mark.slow

STICKY = 2  # REPLICA_STICKY_SECONDS of both services
PASSWORD = "a-long-test-password-0123"
STAFF_EMAIL = "staff@example.com"


@dataclass
class Customer:
    user_id: str
    token: str
    balance_id: str


@dataclass
class Stack:
    cluster: Replication
    redis: RedisServer
    loose: LiveServer
    strict: LiveServer
    customer: Customer

    def marker_set(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.redis.port, socket_connect_timeout=1)
        try:
            return bool(client.exists(key_of(self.customer.user_id)))
        finally:
            client.close()

    def wait_marker_expired(self) -> None:
        wait_until(lambda: not self.marker_set(), timeout=STICKY + 5, interval=0.1, what="the recent-write marker")


def _manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    require_programs()
    with ExitStack() as stack:
        cluster = stack.enter_context(replication_cluster())
        redis_server = stack.enter_context(private_redis())
        env = {
            "DATABASE_URL": cluster.primary.url(),
            "DATABASE_REPLICA_URLS": cluster.replica.url(),
            "REDIS_URL": redis_server.url(0),
            "REPLICA_STICKY_SECONDS": str(STICKY),
            "ADMIN_REQUIRE_MFA": "false",
            "LOG_LEVEL": "WARNING",
        }
        # Migrations on the primary only; the replica replays them.
        _manage(service_environment(**env), "migrate", "--noinput")
        _manage(
            service_environment(
                **env,
                DJANGO_SUPERUSER_EMAIL=STAFF_EMAIL,
                DJANGO_SUPERUSER_PASSWORD=PASSWORD,
                DJANGO_SUPERUSER_NAME="Staff",
            ),
            "createsuperuser",
            "--noinput",
        )
        loose = stack.enter_context(live_gunicorn(workers=1, REPLICA_MAX_LAG_SECONDS="600", **env))
        strict = stack.enter_context(live_gunicorn(workers=1, REPLICA_MAX_LAG_SECONDS="1", **env))
        customer = _customer(loose.http)
        cluster.wait_caught_up()
        yield Stack(cluster, redis_server, loose, strict, customer)


def _customer(http: Http) -> Customer:
    email = f"replica-{uuid.uuid4().hex[:8]}@example.com"
    registered = http.post("/api/v1/auth/register/", {"email": email, "password": PASSWORD, "name": "Reader"})
    assert registered.status == HTTPStatus.CREATED, registered.body
    token = http.post("/api/v1/auth/token/", {"email": email, "password": PASSWORD}).body["access"]
    wallet = http.post("/api/v1/wallets/", {"name": "Main"}, token=token)
    assert wallet.status == HTTPStatus.CREATED, wallet.body
    balance = http.post(f"/api/v1/wallets/{wallet.body['id']}/balances/", {"currency": "USD"}, token=token)
    assert balance.status == HTTPStatus.CREATED, balance.body
    return Customer(registered.body["id"], token, balance.body["id"])


def _deposit(stack: Stack, amount: str = "10.00") -> dict[str, Any]:
    reply = stack.loose.http.post(
        "/api/v1/transactions/deposit/",
        {"wallet_balance_id": stack.customer.balance_id, "amount": amount},
        token=stack.customer.token,
    )
    assert reply.status == HTTPStatus.CREATED, reply.body
    return reply.body


def _history(server: LiveServer, stack: Stack) -> set[str]:
    reply = server.http.get("/api/v1/transactions/?page_size=200", token=stack.customer.token)
    assert reply.status == HTTPStatus.OK, reply.body
    return {entry["id"] for entry in reply.body["results"]}


def _feed(server: LiveServer, stack: Stack) -> set[str]:
    """The references of the customer's movement.created events."""
    reply = server.http.get("/api/v1/events/?page_size=200&type=movement.created", token=stack.customer.token)
    assert reply.status == HTTPStatus.OK, reply.body
    return {event["data"]["reference"] for event in reply.body["results"]}


def _statement(server: LiveServer, stack: Stack) -> set[str]:
    """The ids of the entries in the customer's statement of the last day (JSON)."""
    end = datetime.now(UTC) + timedelta(minutes=1)
    period = f"from={(end - timedelta(days=1)).isoformat()}&to={end.isoformat()}".replace("+", "%2B")
    reply = server.http.get(
        f"/api/v1/balances/{stack.customer.balance_id}/statement/?{period}", token=stack.customer.token
    )
    assert reply.status == HTTPStatus.OK, reply.body
    return {entry["id"] for entry in reply.body["entries"]}


def _on(server: Any, entry_id: str) -> bool:
    """Whether the entry is in this PostgreSQL server's ledger (SQL on the server itself)."""
    return bool(server.query("SELECT 1 FROM transactions_transaction WHERE id = %s", [entry_id]))


def _ready(server: LiveServer) -> dict[str, Any]:
    reply = server.http.get("/ready/")
    assert reply.status == HTTPStatus.OK, reply.body  # a replica never makes the instance unready
    return reply.body


@pytest.fixture
def paused(stack: Stack) -> Iterator[Replication]:
    """The replica caught up, then its replay paused; replaying and caught up again afterwards."""
    stack.cluster.wait_caught_up()
    stack.cluster.pause_replay()
    try:
        yield stack.cluster
    finally:
        stack.cluster.resume_replay()
        stack.cluster.wait_caught_up()


def test_history_and_events_come_from_the_replica_and_a_users_own_write_from_the_primary(stack, paused):
    earlier = _deposit(stack)
    assert _on(paused.primary, earlier["id"]) and not _on(paused.replica, earlier["id"])

    # Read-your-writes: the depositor's next reads, at once, show the deposit the replica has not replayed.
    assert stack.marker_set()
    assert earlier["id"] in _history(stack.loose, stack)
    assert earlier["reference"] in _feed(stack.loose, stack)
    assert earlier["id"] in _statement(stack.loose, stack)

    # Once the marker expires, the lists come from the replica: without the deposit.
    stack.wait_marker_expired()
    assert not _on(paused.replica, earlier["id"])
    history = _history(stack.loose, stack)
    assert earlier["id"] not in history
    assert earlier["reference"] not in _feed(stack.loose, stack)
    assert earlier["id"] not in _statement(stack.loose, stack)
    # What is not marked as tolerating staleness reads the primary: one entry, the balance.
    one = stack.loose.http.get(f"/api/v1/transactions/{earlier['id']}/", token=stack.customer.token)
    assert one.status == HTTPStatus.OK, one.body
    balance = stack.loose.http.get(f"/api/v1/balances/{stack.customer.balance_id}/", token=stack.customer.token)
    assert balance.body["amount"] == earlier["balance_after"]
    assert _ready(stack.loose)["replicas"]["replica_1"]["status"] == "ok"


def test_an_events_cursor_the_replica_has_not_replayed_is_read_on_the_primary(stack, paused):
    deposit = _deposit(stack)
    stack.wait_marker_expired()
    assert deposit["reference"] not in _feed(stack.loose, stack)  # the feed comes from the replica
    (newest,) = paused.primary.query(
        "SELECT id::text FROM events_event WHERE stream_id = %s ORDER BY sequence DESC LIMIT 1",
        [stack.customer.user_id],
    )[0]
    assert paused.replica.query("SELECT 1 FROM events_event WHERE id = %s", [newest]) == []

    reply = stack.loose.http.get(f"/api/v1/events/?after={newest}", token=stack.customer.token)

    assert reply.status == HTTPStatus.OK, reply.body  # not 400 "no event of yours has this id"
    assert reply.body["results"] == []


def test_a_replica_further_behind_than_the_limit_is_skipped(stack, paused):
    late = _deposit(stack)
    stack.wait_marker_expired()

    # The lag grows while replay is paused; once it passes one second, `strict` reads the primary.
    wait_until(lambda: (paused.replica_lag() or 0) > 1.5, timeout=15, interval=0.1, what="the lag to pass 1.5 s")
    wait_until(lambda: late["id"] in _history(stack.strict, stack), timeout=10, interval=0.2, what="strict to skip")
    replica = _ready(stack.strict)["replicas"]["replica_1"]
    assert replica["status"] == "lagging"
    assert replica["lag_seconds"] > 1
    # At the same moment `loose`, which allows 600 s, still reads the replica, which still lacks the deposit.
    assert not _on(paused.replica, late["id"])
    assert late["id"] not in _history(stack.loose, stack)


def test_reads_go_to_the_primary_while_redis_is_down(stack, paused):
    written = _deposit(stack)
    stack.wait_marker_expired()
    assert written["id"] not in _history(stack.loose, stack)  # the replica answers

    stack.redis.stop()
    try:
        # Whether the user wrote is unknown: the primary answers, and the client sees no error.
        assert written["id"] in _history(stack.loose, stack)
        assert written["reference"] in _feed(stack.loose, stack)
    finally:
        stack.redis.start()
    # Redis back: after its short back-off, the replica is read again.
    wait_until(lambda: written["id"] not in _history(stack.loose, stack), timeout=15, interval=0.2, what="replica")


def test_a_stopped_replica_is_skipped_without_an_error_and_read_again_once_back(stack):
    cluster = stack.cluster
    _deposit(stack)
    stack.wait_marker_expired()
    cluster.wait_caught_up()
    assert _history(stack.loose, stack)  # the worker's connection to the replica is open

    cluster.replica.stop("fast")
    try:
        latest = _deposit(stack)
        stack.wait_marker_expired()
        # Whether the worker finds the replica gone at its lag check or in the read itself, the primary answers.
        for _ in range(3):
            assert latest["id"] in _history(stack.loose, stack)
            assert latest["reference"] in _feed(stack.loose, stack)
        assert _ready(stack.loose)["replicas"]["replica_1"] == {"status": "unavailable", "lag_seconds": None}
    finally:
        cluster.replica.start()
    cluster.wait_caught_up()

    # Back in service: stale again on purpose, and the lists show it once the replica is checked again.
    cluster.pause_replay()
    try:
        unseen = _deposit(stack)
        stack.wait_marker_expired()
        wait_until(lambda: unseen["id"] not in _history(stack.loose, stack), timeout=15, interval=0.2, what="replica")
    finally:
        cluster.resume_replay()
        cluster.wait_caught_up()


# --- the back office --------------------------------------------------------------------------


class AdminSession:
    """A staff member's session in the admin over HTTP: cookies kept by hand (they are Secure, the server is not)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
            for cookie in response.msg.get_all("Set-Cookie") or []:
                name, _, rest = cookie.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return response.status, text
        finally:
            conn.close()

    def csrf_token(self, path: str) -> str:
        status, page = self.request("GET", path)
        assert status == HTTPStatus.OK, page[:500]
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert found, page[:500]
        return found.group(1)

    def login(self, email: str, password: str) -> None:
        token = self.csrf_token("/admin/login/")
        status, page = self.request(
            "POST", "/admin/login/", {"csrfmiddlewaretoken": token, "username": email, "password": password}
        )
        assert status == HTTPStatus.FOUND, page[:500]


def test_the_back_office_lists_and_exports_from_the_replica_and_shows_an_entry_from_the_primary(stack, paused):
    admin = AdminSession(stack.loose.port)
    admin.login(STAFF_EMAIL, PASSWORD)
    entry = _deposit(stack)
    assert not _on(paused.replica, entry["id"])
    ledger = "/admin/transactions/transaction/"

    # The list page comes from the replica, once the staff member's own login (a write) is STICKY seconds old.
    wait_until(lambda: entry["id"] not in _page(admin, ledger), timeout=STICKY + 5, interval=0.2, what="the list")
    assert not _on(paused.replica, entry["id"])
    # The entry's own page reads the primary.
    status, page = admin.request("GET", f"{ledger}{entry['id']}/change/")
    assert status == HTTPStatus.OK, page[:500]
    assert entry["id"][-8:] in page
    # The CSV export streams from the replica too: every entry it has, not the one it has not replayed.
    token = admin.csrf_token(ledger)
    status, exported = admin.request(
        "POST",
        ledger,
        {
            "csrfmiddlewaretoken": token,
            "action": "export_csv",
            "select_across": "1",
            "index": "0",
            "_selected_action": entry["id"],
        },
    )
    assert status == HTTPStatus.OK, exported[:500]
    ids = {row["id"] for row in csv.DictReader(io.StringIO(exported))}
    assert ids and entry["id"] not in ids
    assert ids == {row[0] for row in paused.replica.query("SELECT id::text FROM transactions_transaction")}


def _page(admin: AdminSession, path: str) -> str:
    status, page = admin.request("GET", path)
    assert status == HTTPStatus.OK, page[:500]
    return page
