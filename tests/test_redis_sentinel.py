"""Redis that survives its primary: the service finds the primary through Sentinel (`REDIS_SENTINELS`).

A primary, a replica and three sentinels of the test's own
(`tests/redis_sentinel.py`). The service's `REDIS_URL` names a port where
nothing listens, so whatever reaches Redis went through the sentinels.

* Under a stream of movements from several clients the primary is killed
  (SIGKILL): until the sentinels promote the replica, movements answer 503
  `service_unavailable` at once; then they succeed again, without a
  restart. Afterwards money is conserved to the cent and every chain is
  unbroken: no lock state from before the failover was needed for that.
* A planned switchover moves the locks to the new primary in the same process.
* A write that reaches a primary demoted to a replica (`READONLY`) answers
  503 and the next call asks the sentinels again.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from uuid import UUID

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.invariants import assert_ledger_invariants, totals_by_currency
from tests.live import Http, access_token, free_port, live_gunicorn, wait_until
from tests.redis_sentinel import MASTER_NAME, SentinelSetup, sentinel_setup
from tests.test_deployment import PRODUCTION, _manage
from transactions.models import Transaction, TransactionSource
from wallet_project.errors import ServiceUnavailable
from wallet_project.settings import host_and_port, sentinel_location
from wallets import locks
from wallets.models import WalletBalance

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

API = "/api/v1/transactions"
CLIENTS = 4
INITIAL = Decimal("1000.00")
AMOUNTS = {"deposit": Decimal("2.00"), "withdraw": Decimal("1.00"), "transfer": Decimal("1.00")}
# Movements must succeed again this long after the primary died at the latest (the sentinels need a
# second to call it down, then a few to agree and promote the replica).
RESUME_WITHIN_SECONDS = 30
# A 503 comes from a refused connection or the sentinels' "no primary": no wait, no retry.
PROMPT_503_SECONDS = 2.0
# A lock whose release the dead primary never saw, but which reached the replica, lives on in the new
# primary until its expiry. Promotion comes more than a second (the sentinels' down-after) after the
# kill, so such a lock has less than LOCK_EXPIRE - 1 s left then; a lock wait longer than that ends in
# the lock, not in 429 lock_timeout.
LIVE_LOCKS = {"LOCK_WAIT_SECONDS": "1.5", "LOCK_EXPIRE_SECONDS": "2"}


@pytest.fixture
def sentinels() -> Any:
    with sentinel_setup() as setup:
        yield setup


def _nowhere() -> str:
    """A REDIS_URL whose host and port serve nothing: only the sentinels can say where Redis is."""
    return f"redis://127.0.0.1:{free_port()}/0"


# --- the primary killed under a stream of movements ------------------------------------------


@dataclass
class Answer:
    client: int
    kind: str
    amount: Decimal
    source: int
    destination: int | None
    status: int
    code: str | None
    elapsed: float
    started: float


def _stream(
    api: Http, index: int, token: str, balances: list[WalletBalance], stop: threading.Event, answers: list[Answer]
) -> None:
    """Client `index`: a transfer to the next client's balance, a deposit (with an Idempotency-Key, so
    through DRF and its throttles) and a withdrawal from its own, over and over until told to stop."""
    own, neighbour = balances[index], balances[(index + 1) % len(balances)]
    for number in itertools.count():
        if stop.is_set():
            return
        kind = ("transfer", "deposit", "withdraw")[number % 3]
        amount = AMOUNTS[kind]
        headers: dict[str, str] = {}
        if kind == "transfer":
            body = {
                "from_wallet_balance_id": str(own.pk),
                "to_wallet_balance_id": str(neighbour.pk),
                "amount": str(amount),
            }
        else:
            body = {"wallet_balance_id": str(own.pk), "amount": str(amount)}
            if kind == "deposit":
                headers["Idempotency-Key"] = f"failover-{index}-{number}"
        started = time.monotonic()
        reply = api.post(f"{API}/{kind}/", body, token=token, headers=headers)
        answers.append(
            Answer(
                client=index,
                kind=kind,
                amount=amount,
                source=index,
                destination=(index + 1) % len(balances) if kind == "transfer" else None,
                status=reply.status,
                code=reply.error_code,
                elapsed=reply.elapsed,
                started=started,
            )
        )


def _expected_amounts(answers: list[Answer], count: int) -> list[Decimal]:
    """Each balance as the clients were told: every 201 moved exactly its money, every 503 none."""
    amounts = [INITIAL] * count
    for answer in answers:
        if answer.status != HTTPStatus.CREATED:
            continue
        if answer.kind == "deposit":
            amounts[answer.source] += answer.amount
        elif answer.kind == "withdraw":
            amounts[answer.source] -= answer.amount
        else:
            assert answer.destination is not None
            amounts[answer.source] -= answer.amount
            amounts[answer.destination] += answer.amount
    return amounts


def _script_calls(node: Any) -> int:
    """How many EVALSHA this Redis has run: the locks' scripts (and the fast path's throttle count)."""
    client = node.client()
    try:
        return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
    finally:
        client.close()


def _throttle_keys(node: Any, user: Any = None) -> list[bytes]:
    """The per-user throttle counters on this Redis (of `user` only, if given)."""
    client = node.client()
    try:
        return list(client.scan_iter(match=f"wallet:throttle:user:{user.pk if user else ''}*", count=1000))
    finally:
        client.close()


def test_the_primary_killed_under_a_stream_of_movements_costs_503s_only_until_the_replica_takes_over(
    sentinels: SentinelSetup,
) -> None:
    users = [UserFactory() for _ in range(CLIENTS)]
    balances = [funded_balance(amount=INITIAL, wallet=WalletFactory(owner=user)) for user in users]
    tokens = [access_token(user) for user in users]
    newcomer = UserFactory()  # first seen by Redis after the failover
    newcomer_balance = funded_balance(amount=INITIAL, wallet=WalletFactory(owner=newcomer))
    answers: list[Answer] = []
    stop = threading.Event()

    environment = {
        "REDIS_URL": _nowhere(),
        "REDIS_SENTINELS": sentinels.addresses,
        "REDIS_SENTINEL_MASTER": MASTER_NAME,
        "THROTTLE_USER_RATE": "1000000/minute",
        **LIVE_LOCKS,
    }
    with live_gunicorn(**environment) as server:
        clients = [
            threading.Thread(target=_stream, args=(server.http, i, tokens[i], balances, stop, answers), daemon=True)
            for i in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        try:
            wait_until(
                lambda: sum(a.status == HTTPStatus.CREATED for a in answers) >= 30,
                timeout=30,
                what=f"the stream to flow: {Counter(a.status for a in answers)}\n{server.output()}",
            )
            # The locks' scripts and the throttles' counts went to the primary the sentinels named.
            assert _script_calls(sentinels.primary) > 0
            assert _throttle_keys(sentinels.primary)
            scripts_before_the_failover = _script_calls(sentinels.replica)

            killed_at = time.monotonic()
            sentinels.primary.kill()

            wait_until(
                lambda: sentinels.master_port() == sentinels.replica.port,
                timeout=RESUME_WITHIN_SECONDS,
                interval=0.1,
                what="the sentinels to promote the replica",
            )
            promoted_seen_at = time.monotonic()

            def resumed() -> bool:
                after = [a for a in answers if a.started > promoted_seen_at and a.status == HTTPStatus.CREATED]
                return all(sum(a.client == i for a in after) >= 3 for i in range(CLIENTS))

            wait_until(
                resumed,
                timeout=max(1.0, killed_at + RESUME_WITHIN_SECONDS - time.monotonic()),
                interval=0.05,
                what=f"every client's movements to succeed again\n{server.output()}",
            )
            back_at = time.monotonic()
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=30)
        assert not any(client.is_alive() for client in clients)
        assert Http(server.port).get("/ready/").status == HTTPStatus.OK

        # A user Redis has never counted: their deposits' throttle counts (django-redis, through
        # Sentinel) land on the new primary once the throttles try Redis again (they skip it for two
        # seconds after a failure).
        newcomer_deposits = []

        def newcomer_counted() -> bool:
            reply = server.http.post(
                f"{API}/deposit/",
                {"wallet_balance_id": str(newcomer_balance.pk), "amount": str(AMOUNTS["deposit"])},
                token=access_token(newcomer),
                headers={"Idempotency-Key": f"newcomer-{len(newcomer_deposits)}"},
            )
            assert reply.status == HTTPStatus.CREATED, reply.body
            newcomer_deposits.append(reply)
            return bool(_throttle_keys(sentinels.replica, newcomer))

        wait_until(newcomer_counted, timeout=15, interval=0.2, what="the newcomer's throttle count")

    during = [a for a in answers if a.started >= killed_at]
    refused = [a for a in answers if a.status != HTTPStatus.CREATED]
    # The outage was seen, and it was nothing but quick 503s.
    assert any(a.status == HTTPStatus.SERVICE_UNAVAILABLE for a in during), Counter(a.status for a in during)
    assert {(a.status, a.code) for a in refused} == {(HTTPStatus.SERVICE_UNAVAILABLE, "service_unavailable")}
    assert max(a.elapsed for a in refused) < PROMPT_503_SECONDS, sorted(a.elapsed for a in refused)[-5:]
    assert back_at - killed_at < RESUME_WITHIN_SECONDS
    # Then to the new one: the scripts on their per-thread connections (a replica runs none).
    assert _script_calls(sentinels.replica) > scripts_before_the_failover

    # Money conserved to the cent: each balance is what its 201s say, the ledger has one entry per leg of
    # each 201 and none of any 503, and every chain is unbroken.
    expected = _expected_amounts(answers, CLIENTS)
    for balance, amount in zip(balances, expected, strict=True):
        balance.refresh_from_db()
        assert balance.amount == amount, (balance.pk, balance.amount, amount)
    created = Counter(a.kind for a in answers if a.status == HTTPStatus.CREATED)
    entries = Transaction.objects.exclude(source=TransactionSource.SEED).count()
    newcomer_balance.refresh_from_db()
    assert newcomer_balance.amount == INITIAL + len(newcomer_deposits) * AMOUNTS["deposit"]
    assert entries == created["deposit"] + created["withdraw"] + 2 * created["transfer"] + len(newcomer_deposits)
    deposited = (created["deposit"] + len(newcomer_deposits)) * AMOUNTS["deposit"]
    withdrawn = created["withdraw"] * AMOUNTS["withdraw"]
    assert totals_by_currency() == {"USD": (CLIENTS + 1) * INITIAL + deposited - withdrawn}
    assert_ledger_invariants([balance.pk for balance in [*balances, newcomer_balance]])


# --- the same process, the primary moved ---------------------------------------------------


@pytest.fixture
def locks_through_sentinels(sentinels: SentinelSetup, settings: Any) -> Any:
    """This process's balance locks find their Redis through the test's sentinels."""
    settings.REDIS_SENTINELS = [("127.0.0.1", sentinel.port) for sentinel in sentinels.sentinels]
    settings.REDIS_SENTINEL_MASTER = MASTER_NAME
    locks.reset_backend()
    backend = locks.RedisLocks(_nowhere())
    yield backend
    backend.client.close()
    backend.waiter.close()
    locks.reset_backend()


def _movement_locks(backend: locks.RedisLocks, *balance_ids: UUID) -> list[Any]:
    names = [locks.lock_name(balance_id) for balance_id in sorted(balance_ids)]
    return backend.acquire_all(names, time.monotonic() + 1)


def _held_on(node: Any, balance_id: UUID) -> bool:
    client = node.client()
    try:
        return bool(client.exists(f"lock:{locks.lock_name(balance_id)}"))
    finally:
        client.close()


def test_a_switchover_moves_the_locks_to_the_new_primary_without_a_restart(
    sentinels: SentinelSetup, locks_through_sentinels: locks.RedisLocks
) -> None:
    backend = locks_through_sentinels
    first, second = UUID(int=1), UUID(int=2)
    held = _movement_locks(backend, first, second)
    assert _held_on(sentinels.primary, first) and _held_on(sentinels.primary, second)
    backend.release_all(held)
    assert not _held_on(sentinels.primary, second)

    control = sentinels.sentinels[0].client()
    try:
        assert control.execute_command("SENTINEL", "FAILOVER", MASTER_NAME) in (b"OK", "OK", True)
    finally:
        control.close()
    wait_until(lambda: sentinels.master_port() == sentinels.replica.port, timeout=20, what="the switchover")

    # The old primary is still up and still a primary: connections open to it keep using it until the
    # sentinels turn it into a replica (a failover-timeout after they saw it again, on their next look),
    # which also disconnects its clients. From then on the same backend (its per-thread script
    # connection, its pool, its waiter) finds the new primary on its next call, without a restart.
    def locks_on_the_new_primary() -> bool:
        try:
            held = _movement_locks(backend, first, second)
        except ServiceUnavailable:
            return False  # the old primary answered READONLY while it was being demoted: asked again next time
        try:
            return _held_on(sentinels.replica, first) and _held_on(sentinels.replica, second)
        finally:
            backend.release_all(held)

    wait_until(locks_on_the_new_primary, timeout=40, interval=0.2, what="the locks on the new primary")
    old_primary = sentinels.primary.client()
    try:
        assert old_primary.info("replication")["role"] == "slave"
    finally:
        old_primary.close()
    assert backend.try_acquire(locks.lock_name(first)) is not None  # the pool's road (idempotency keys) too
    assert _held_on(sentinels.replica, first)


def test_a_write_to_a_demoted_primary_answers_503_and_the_next_call_asks_the_sentinels_again(
    sentinels: SentinelSetup, locks_through_sentinels: locks.RedisLocks
) -> None:
    backend = locks_through_sentinels
    balance_id = UUID(int=3)
    backend.release_all(_movement_locks(backend, balance_id))  # the thread's script connection is open
    elsewhere = sentinels.start_spare()
    primary = sentinels.primary.client()
    try:
        # Demoted under its open connections, as an old primary is when it comes back after a failover.
        primary.execute_command("REPLICAOF", "127.0.0.1", str(elsewhere.port))
        with pytest.raises(ServiceUnavailable) as refused:
            _movement_locks(backend, balance_id)
        assert isinstance(refused.value.__cause__, redis.ConnectionError)  # READONLY, turned into a reconnect
        assert not _held_on(sentinels.primary, balance_id)
    finally:
        primary.execute_command("REPLICAOF", "NO", "ONE")
        primary.close()

    held = _movement_locks(backend, balance_id)
    assert _held_on(sentinels.primary, balance_id)
    backend.release_all(held)


def test_without_sentinels_the_locks_use_redis_url_as_before(settings: Any) -> None:
    """The default road is unchanged: a plain client of REDIS_URL, with no sentinel anywhere."""
    assert settings.REDIS_SENTINELS == []
    backend = locks.RedisLocks(settings.REDIS_URL)
    kwargs = backend.client.connection_pool.connection_kwargs
    url = redis.connection.parse_url(settings.REDIS_URL)
    assert type(backend.client.connection_pool) is redis.ConnectionPool
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == (url["host"], url["port"], url["db"])
    assert "CLIENT_CLASS" not in settings.CACHES["default"]["OPTIONS"]


# --- the settings ----------------------------------------------------------------------------


def test_redis_sentinels_are_read_as_host_port_pairs_and_anything_else_is_refused() -> None:
    assert host_and_port("REDIS_SENTINELS", "10.0.0.5:26379") == ("10.0.0.5", 26379)
    assert host_and_port("REDIS_SENTINELS", "[::1]:26380") == ("::1", 26380)
    assert host_and_port("REDIS_SENTINELS", "sentinel-2.internal:5000") == ("sentinel-2.internal", 5000)
    for wrong in ("10.0.0.5", "10.0.0.5:", ":26379", "10.0.0.5:port", "10.0.0.5:70000"):
        with pytest.raises(ImproperlyConfigured, match="REDIS_SENTINELS"):
            host_and_port("REDIS_SENTINELS", wrong)


def test_the_cache_finds_its_primary_by_the_sentinel_masters_name_keeping_the_urls_credentials_and_database() -> None:
    assert sentinel_location("redis://:s3cret@unused:6379/3", "wallet") == "redis://:s3cret@wallet/3"
    assert sentinel_location("redis://user:pw@unused/0?health_check_interval=5", "m") == (
        "redis://user:pw@m/0?health_check_interval=5"
    )
    assert sentinel_location("redis://127.0.0.1:6379/15", "mymaster") == "redis://mymaster/15"


def test_with_redis_sentinels_the_settings_configure_django_redis_for_sentinel() -> None:
    code = (
        "from django.conf import settings; import json; cache = settings.CACHES['default']; "
        "print(json.dumps([settings.REDIS_SENTINELS, cache['LOCATION'], cache['OPTIONS']['CLIENT_CLASS'], "
        "cache['OPTIONS']['CONNECTION_FACTORY'], cache['OPTIONS']['SENTINELS']]))"
    )
    sentinel_environment = {
        **PRODUCTION,
        "REDIS_URL": "redis://:pw@unused:6379/2",
        "REDIS_SENTINELS": "127.0.0.1:26379, 127.0.0.1:26380",
        "REDIS_SENTINEL_MASTER": "wallet",
    }

    result = _manage("shell", "--no-imports", "-c", code, **sentinel_environment)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        [["127.0.0.1", 26379], ["127.0.0.1", 26380]],
        "redis://:pw@wallet/2",
        "django_redis.client.SentinelClient",
        "django_redis.pool.SentinelConnectionFactory",
        [["127.0.0.1", 26379], ["127.0.0.1", 26380]],
    ]
    refused = _manage("check", **{**sentinel_environment, "REDIS_URL": "rediss://unused:6380/0"})
    assert refused.returncode != 0 and "REDIS_SENTINELS" in refused.stderr
    refused = _manage("check", **{**sentinel_environment, "REDIS_SENTINELS": "127.0.0.1"})
    assert refused.returncode != 0 and "REDIS_SENTINELS holds '127.0.0.1'" in refused.stderr
