"""Where the service's reads go with a read replica configured, in process: the router, the lag check, the
read-your-writes marker and what a movement pays for it.

The replica is a real streaming replica (tests/replication.py) of a primary that is not the test database:
that primary holds one table of this schema, `wallets_currency`, with a single currency, XTS, which the test
database does not have. A read that answers XTS came from the replica; one that answers USD, from the test
database ("default", the primary of the service under test). Anything else the replica is asked for is
missing there and fails, which is how a replica that has not replayed a migration fails.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from decimal import Decimal
from http import HTTPStatus

import pytest
import redis
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.utils import load_backend
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from conftest import client_for
from tests.factories import WalletFactory, funded_balance
from tests.live import free_port, wait_until
from tests.replication import Replication, replication_cluster, require_programs
from tests.test_statement_budget import PLAIN_TRANSFER, _statements, _transfer
from transactions.models import Transaction
from wallet_project.replicas import monitor, recent_writes
from wallet_project.replicas.reads import read_from_replica
from wallet_project.replicas.router import ReplicaRouter
from wallet_project.replicas.routing import routed_to
from wallet_project.settings import database_from_url
from wallets import locks
from wallets.models import Currency, WalletBalance

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ALIAS = "replica_1"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Replication]:
    require_programs()
    with replication_cluster() as cluster:
        cluster.primary.query("CREATE TABLE wallets_currency (code varchar(3) PRIMARY KEY, name text, minor_unit int)")
        cluster.primary.query("INSERT INTO wallets_currency VALUES ('XTS', 'Testing', 2)")
        cluster.wait_caught_up()
        yield cluster


def _configure(alias: str, url: str) -> None:
    """Add `alias` to Django's connections, as settings.py does for DATABASE_REPLICA_URLS.

    As a connection made at run time, not an entry of DATABASES: the test case's guard lets a test use
    those (and the test database's flush leaves them alone).
    """
    settings_dict = {**copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS]), **database_from_url(url)}
    connections[alias] = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)


def _unconfigure(alias: str) -> None:
    connections[alias].close()
    del connections[alias]


@pytest.fixture
def replica(settings, cluster) -> Iterator[str]:
    """The cluster's replica configured as the service's one read replica."""
    _configure(ALIAS, cluster.replica.url())
    settings.DATABASE_REPLICAS = [ALIAS]
    settings.DATABASE_ROUTERS = ["wallet_project.replicas.router.ReplicaRouter"]
    settings.REPLICA_STICKY_SECONDS = 5
    settings.REPLICA_MAX_LAG_SECONDS = 3
    monitor.forget()
    try:
        yield ALIAS
    finally:
        monitor.forget()
        _unconfigure(ALIAS)


def _codes() -> set[str]:
    return set(Currency.objects.values_list("code", flat=True))


def _replica_read(reader: User | None = None) -> set[str]:
    return read_from_replica(_codes, reader=reader)


# --- where reads go ---------------------------------------------------------------------------


def test_a_marked_read_goes_to_the_replica_and_the_same_read_unmarked_to_the_primary(replica, user):
    assert _replica_read(user) == {"XTS"}
    assert "USD" in _codes() and "XTS" not in _codes()


def test_a_read_inside_a_transaction_on_the_primary_reads_the_primary(replica, user):
    with transaction.atomic():
        assert "USD" in _replica_read(user)


def test_authentication_and_writes_go_to_the_primary_inside_a_marked_read(replica, user):
    with routed_to(replica):
        assert _codes() == {"XTS"}
        # The replica has no such table: asked there, these would fail.
        assert User.objects.filter(pk=user.pk).exists()
        wallet = WalletFactory(owner=user)
        assert wallet._state.db == DEFAULT_DB_ALIAS


def test_migrations_run_on_the_primary_only():
    router = ReplicaRouter()
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "transactions") is True
    assert router.allow_migrate(ALIAS, "transactions") is False


def test_a_user_who_just_wrote_reads_the_primary_and_others_the_replica(replica, user, other_user):
    recent_writes.note_write(user.pk)

    assert "USD" in _replica_read(user)
    assert _replica_read(other_user) == {"XTS"}


def test_when_redis_cannot_say_whether_the_user_wrote_the_primary_is_read(replica, user, settings, monkeypatch):
    monkeypatch.setitem(recent_writes._state, "down_until", 0.0)
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    locks.reset_backend()

    assert "USD" in _replica_read(user)
    assert "USD" in _replica_read(user)  # and again without waiting on Redis (its back-off)


def test_a_read_the_replica_fails_is_made_again_on_the_primary(replica, user, caplog):
    """As when a replica has not yet replayed a migration: the history's table is not there."""
    balance = funded_balance(amount="25.00", wallet=WalletFactory(owner=user))
    with caplog.at_level(logging.WARNING, logger="wallet.replicas"):
        response = client_for(user).get("/api/v1/transactions/")

    assert response.status_code == HTTPStatus.OK, response.json()
    assert [row["wallet_balance_id"] for row in response.json()["results"]] == [str(balance.pk)]
    assert "replica read failed; read again on the primary" in caplog.messages
    assert monitor.state_of(replica).usable  # a failed query is not a lost replica


def test_a_replica_lost_after_its_check_is_skipped_without_an_error(replica, cluster, user, monkeypatch, caplog):
    monkeypatch.setattr(monitor, "CHECK_INTERVAL", 60.0)  # no second check: the read itself meets the loss
    assert _replica_read(user) == {"XTS"}
    cluster.replica.stop("fast")
    try:
        with caplog.at_level(logging.WARNING, logger="wallet.replicas"):
            assert "USD" in _replica_read(user)
        assert "replica read failed; read again on the primary" in caplog.messages
        assert monitor.state_of(replica).status == monitor.UNAVAILABLE
        assert "USD" in _replica_read(user)  # skipped now, no second failure
    finally:
        cluster.replica.start()
        cluster.wait_caught_up()


def test_a_replica_that_does_not_answer_is_unavailable(replica, cluster, user):
    cluster.replica.stop("fast")
    try:
        state = monitor.state_of(replica)
        assert (state.status, state.lag_seconds) == (monitor.UNAVAILABLE, None)
        assert "USD" in _replica_read(user)
    finally:
        cluster.replica.start()
        cluster.wait_caught_up()


def test_a_replica_behind_the_limit_is_skipped_until_it_catches_up(replica, cluster, user, settings):
    settings.REPLICA_MAX_LAG_SECONDS = 0.5
    cluster.pause_replay()
    try:
        cluster.primary.query("INSERT INTO wallets_currency VALUES ('XTR', 'Lagging', 2) ON CONFLICT DO NOTHING")
        wait_until(lambda: (cluster.replica_lag() or 0) > 0.5, timeout=10, interval=0.05, what="the lag to grow")
        monitor.forget()
        state = monitor.state_of(replica)
        assert state.status == monitor.LAGGING and state.lag_seconds > 0.5
        assert "USD" in _replica_read(user)
    finally:
        cluster.resume_replay()
        cluster.wait_caught_up()
    monitor.forget()
    assert {"XTS", "XTR"} <= _replica_read(user)


def test_an_idle_primary_is_no_lag(replica, cluster):
    """Nothing to replay and the stream up: lag 0, however old the last replayed commit is."""
    cluster.primary.query("UPDATE wallets_currency SET name = name")  # a commit for the replica to replay
    cluster.wait_caught_up()
    wait_until(
        lambda: cluster.replica.query("SELECT clock_timestamp() - pg_last_xact_replay_timestamp() > '2 s'")[0][0],
        timeout=10,
        what="the last replayed commit to be two seconds old",
    )
    state = monitor.state_of(replica)
    assert (state.status, state.lag_seconds) == (monitor.OK, 0.0)


def test_a_server_that_is_not_in_recovery_is_never_read(settings, cluster, user):
    _configure(ALIAS, cluster.primary.url())
    settings.DATABASE_REPLICAS = [ALIAS]
    settings.DATABASE_ROUTERS = ["wallet_project.replicas.router.ReplicaRouter"]
    monitor.forget()
    try:
        assert monitor.state_of(ALIAS).status == monitor.NOT_A_REPLICA
        assert "USD" in _replica_read(user)
    finally:
        monitor.forget()
        _unconfigure(ALIAS)


def test_ready_reports_each_replica_and_its_lag(replica, cluster):
    cluster.wait_caught_up()
    body = client_for().get("/ready/").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis"}
    assert body["replicas"] == {ALIAS: {"status": "ok", "lag_seconds": 0.0}}


def test_ready_says_nothing_of_replicas_without_them():
    body = client_for().get("/ready/").json()
    assert "replicas" not in body


# --- what writes cost -------------------------------------------------------------------------


@pytest.fixture
def balances(user, other_user):
    source = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    destination = funded_balance(amount="0", wallet=WalletFactory(owner=other_user))
    return source, destination


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "drf"])
def test_a_transfer_marks_its_user_in_its_two_round_trips(replica, user, balances, settings, fast_path, monkeypatch):
    settings.MOVEMENTS_FAST_PATH = fast_path
    source, destination = balances
    client = client_for(user)
    assert _transfer(client, source, destination).status_code == HTTPStatus.CREATED  # scripts loaded
    redis.Redis.from_url(settings.REDIS_URL).delete(recent_writes.key_of(user.pk))
    sent: list[tuple] = []
    send_command = redis.connection.AbstractConnection.send_command

    def counted(connection, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(args)
        return send_command(connection, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", counted)
    with (
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as primary,
        CaptureQueriesContext(connections[replica]) as on_replica,
    ):
        response = _transfer(client, source, destination)

    assert response.status_code == HTTPStatus.CREATED, response.json()
    # The lock acquire (with the throttle's count on the fast path; through DRF the count is its own call)
    # and the release, which sets the marker: no SET of its own, from the middleware or anywhere.
    assert [command[0] for command in sent] == ["EVALSHA"] * (2 if fast_path else 3)
    assert recent_writes.key_of(user.pk) in sent[-1]
    assert len(_statements(primary)) <= PLAIN_TRANSFER
    assert on_replica.captured_queries == []
    assert 0 < redis.Redis.from_url(settings.REDIS_URL).ttl(recent_writes.key_of(user.pk)) <= 5


def test_a_refused_movement_marks_nothing(replica, user, balances, settings):
    source, destination = balances
    response = client_for(user).post(
        "/api/v1/transactions/transfer/",
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "900.00"},
        format="json",
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, response.json()
    assert not redis.Redis.from_url(settings.REDIS_URL).exists(recent_writes.key_of(user.pk))
    assert Transaction.objects.filter(wallet_balance=source).count() == 1  # the funding deposit alone


def test_another_write_marks_its_user_and_a_refused_one_does_not(replica, user, settings):
    client = client_for(user)
    marker = recent_writes.key_of(user.pk)
    store = redis.Redis.from_url(settings.REDIS_URL)

    assert client.post("/api/v1/wallets/", {"name": "Savings"}, format="json").status_code == HTTPStatus.CREATED
    assert 0 < store.ttl(marker) <= 5

    store.delete(marker)
    assert client.post("/api/v1/wallets/", {"name": "Savings"}, format="json").status_code == HTTPStatus.CONFLICT
    assert not store.exists(marker)
    assert client.get("/api/v1/wallets/").status_code == HTTPStatus.OK
    assert not store.exists(marker)


def test_without_replicas_no_write_marks_anything(user, balances, settings):
    source, destination = balances
    assert settings.DATABASE_REPLICAS == []

    assert _transfer(client_for(user), source, destination).status_code == HTTPStatus.CREATED
    assert client_for(user).post("/api/v1/wallets/", {"name": "Other"}, format="json").status_code == 201
    store = redis.Redis.from_url(settings.REDIS_URL)
    assert list(store.scan_iter(match=f"{recent_writes.KEY_PREFIX}*")) == []
    assert WalletBalance.objects.get(pk=source.pk).amount == Decimal("499.00")
