"""Concurrency: real threads against the real PostgreSQL and Redis.

Each thread has its own database connection (Django gives one per thread) and
closes it when done. The tests prove what DESIGN.md promises ("One road for
money"): concurrent movements never overdraw a balance, A→B and B→A never
deadlock, money is conserved to the cent, the PostgreSQL row lock alone still
prevents a double spend when a Redis lock is missing or has expired, and a
lock wait that runs out is a clean 429 that writes nothing.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from http import HTTPStatus
from typing import Any
from uuid import UUID

import pytest
import redis
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from conftest import held_in_redis
from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.invariants import (
    JOIN_TIMEOUT_SECONDS,
    Outcome,
    assert_ledger_invariants,
    bypass_redis_locks,
    run_in_threads,
    totals_by_currency,
    unexpected,
)
from transactions import services
from transactions.models import CREDIT_TYPES, IdempotencyRecord, Transaction, TransactionType
from wallet_project.errors import (
    AmountTooSmall,
    InsufficientFunds,
    LockTimeout,
    RefundExceedsPayment,
)
from wallets import locks
from wallets.models import Currency, ExchangeRate, WalletBalance

pytestmark = pytest.mark.django_db(transaction=True)

WITHDRAW_URL = "/api/v1/transactions/withdraw/"
DEPOSIT_URL = "/api/v1/transactions/deposit/"


@pytest.fixture(autouse=True)
def _no_throttling(settings: Any) -> None:
    """Fifty requests of one user in a second are the point here, whatever rate another test left behind."""
    settings.THROTTLE_USER_RATE = settings.THROTTLE_ANON_RATE = "1000000/minute"


def bearer(user: Any) -> str:
    return f"Bearer {AccessToken.for_user(user)}"


def redis_lock_key(balance_id: UUID) -> str:
    # python-redis-lock stores lock `name` under `lock:<name>`, ignoring Django's cache prefix.
    return f"lock:{locks.lock_name(balance_id)}"


def withdrawal_entries(balance: WalletBalance) -> list[Transaction]:
    return list(Transaction.objects.filter(wallet_balance=balance, type=TransactionType.WITHDRAWAL))


# --- 1. concurrent withdrawals never overdraw ------------------------------------------------

INITIAL = Decimal("100.00")
STEP = Decimal("3.00")
WITHDRAWALS = 50


def test_concurrent_withdrawals_beyond_the_balance_never_overdraw_it() -> None:
    balance = funded_balance(amount=INITIAL)

    outcomes = run_in_threads(
        lambda _: services.withdrawal_create(
            wallet_balance_id=balance.pk, amount=STEP, owner=balance.wallet.owner, created_by=None
        ),
        WITHDRAWALS,
    )

    assert unexpected(outcomes, InsufficientFunds, LockTimeout) == []
    succeeded = [o.result for o in outcomes if o.error is None]
    refused = [o.error for o in outcomes if isinstance(o.error, InsufficientFunds)]
    timed_out = [o.error for o in outcomes if isinstance(o.error, LockTimeout)]
    balance.refresh_from_db()
    assert balance.amount >= 0
    assert len(succeeded) * STEP == INITIAL - balance.amount
    # A 5 s lock wait is ample for 50 short movements: every one is decided by the funds rule.
    assert timed_out == []
    assert len(succeeded) == int(INITIAL // STEP)
    assert len(refused) == WITHDRAWALS - len(succeeded)
    assert all(error.code == "insufficient_funds" for error in refused)
    # Each success saw the balance left by the one before it: one chain, no two on the same link.
    assert sorted(entry.balance_after for entry in succeeded) == [
        INITIAL - STEP * k for k in range(len(succeeded), 0, -1)
    ]
    assert len(withdrawal_entries(balance)) == len(succeeded)
    assert_ledger_invariants([balance.pk])


def test_concurrent_withdrawals_through_the_api_never_overdraw_the_balance() -> None:
    user = UserFactory()
    balance = funded_balance(amount=INITIAL, wallet=WalletFactory(owner=user))
    authorization = bearer(user)

    def withdraw(_: int) -> Any:
        client = APIClient()  # one client per thread: APIClient is not thread-safe
        client.credentials(HTTP_AUTHORIZATION=authorization)
        return client.post(WITHDRAW_URL, {"wallet_balance_id": str(balance.pk), "amount": str(STEP)}, format="json")

    outcomes = run_in_threads(withdraw, WITHDRAWALS)

    assert unexpected(outcomes) == []
    responses = [o.result for o in outcomes]
    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {HTTPStatus.CREATED, HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.TOO_MANY_REQUESTS}, (
        statuses
    )
    created = [r.json() for r in responses if r.status_code == HTTPStatus.CREATED]
    refusals = [r.json()["error"]["code"] for r in responses if r.status_code == HTTPStatus.UNPROCESSABLE_ENTITY]
    lock_timeouts = [r for r in responses if r.status_code == HTTPStatus.TOO_MANY_REQUESTS]
    assert set(refusals) <= {"insufficient_funds"}
    assert all(r.json()["error"]["code"] == "lock_timeout" for r in lock_timeouts)
    balance.refresh_from_db()
    assert balance.amount >= 0
    assert len(created) * STEP == INITIAL - balance.amount
    assert lock_timeouts == []
    assert len(created) == int(INITIAL // STEP)
    assert sorted(Decimal(body["balance_after"]) for body in created) == [
        INITIAL - STEP * k for k in range(len(created), 0, -1)
    ]
    assert sorted(body["sequence"] for body in created) == list(range(2, len(created) + 2))
    assert len(withdrawal_entries(balance)) == len(created)
    assert_ledger_invariants([balance.pk])


def test_concurrent_movements_of_one_user_beyond_the_throttle_book_only_what_it_allows(settings: Any) -> None:
    """The fast path counts a movement against its user's throttle in the script that takes its locks
    (wallets.locks): under a burst, exactly the limit is booked, the rest is refused holding nothing."""
    settings.THROTTLE_USER_RATE = "20/day"
    user = UserFactory()
    balance = funded_balance(amount=INITIAL, wallet=WalletFactory(owner=user))
    authorization = bearer(user)

    def deposit(_: int) -> Any:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=authorization)
        return client.post(DEPOSIT_URL, {"wallet_balance_id": str(balance.pk), "amount": "1.00"}, format="json")

    outcomes = run_in_threads(deposit, 30)

    assert unexpected(outcomes) == []
    responses = [o.result for o in outcomes]
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {HTTPStatus.CREATED: 20, HTTPStatus.TOO_MANY_REQUESTS: 10}, statuses
    throttled = [r for r in responses if r.status_code == HTTPStatus.TOO_MANY_REQUESTS]
    assert {r.json()["error"]["code"] for r in throttled} == {"throttled"}
    assert all(int(r["Retry-After"]) > 0 for r in throttled)
    balance.refresh_from_db()
    assert balance.amount == INITIAL + 20
    assert Transaction.objects.filter(wallet_balance=balance, type=TransactionType.DEPOSIT).count() == 21
    lock_store = redis.Redis.from_url(settings.REDIS_URL)
    assert not lock_store.exists(redis_lock_key(balance.pk)), "a refused movement left its lock behind"
    lock_store.close()
    assert_ledger_invariants([balance.pk])


# --- 2. A→B and B→A never deadlock ---------------------------------------------------------


@pytest.mark.parametrize("redis_locks", [True, False], ids=["redis-and-row-locks", "row-locks-only"])
def test_opposite_transfers_between_one_pair_finish_without_deadlock(
    redis_locks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the Redis locks the row locks alone, taken in pk order, must keep A→B and B→A apart;
    # PostgreSQL would otherwise report a deadlock, which the threads would record as an error.
    if not redis_locks:
        bypass_redis_locks(monkeypatch)
    first = funded_balance(amount="100.00")
    second = funded_balance(amount="100.00")
    threads, per_thread, amount = 16, 8, Decimal("1.00")

    def shuttle(index: int) -> list[Transaction]:
        source, destination = (first, second) if index % 2 == 0 else (second, first)
        return [
            services.transfer_create(
                from_wallet_balance_id=source.pk,
                to_wallet_balance_id=destination.pk,
                amount=amount,
                owner=source.wallet.owner,
                created_by=None,
            )
            for _ in range(per_thread)
        ]

    outcomes = run_in_threads(shuttle, threads)

    # Neither balance can run dry (each sends at most 64.00 of its 100.00), so every transfer goes through.
    assert unexpected(outcomes) == []
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.amount + second.amount == Decimal("200.00")
    assert first.amount == second.amount == Decimal("100.00")  # as many each way
    assert Transaction.objects.filter(type=TransactionType.TRANSFER_OUT).count() == threads * per_thread
    assert_ledger_invariants([first.pk, second.pk])


# --- 3. a random mix conserves money to the cent ---------------------------------------------

MIX_THREADS = 6
MIX_OPERATIONS = 25


def _random_amount(rng: random.Random, currency: Currency, ceiling: int) -> Decimal:
    minor = 10**currency.minor_unit
    return Decimal(rng.randint(1, ceiling * minor)) / minor


def test_a_random_mix_of_movements_conserves_money_to_the_cent() -> None:
    users = [UserFactory() for _ in range(3)]
    plan = [
        (users[0], "USD", "1000.00"),
        (users[0], "EUR", "500.00"),
        (users[1], "USD", "800.00"),
        (users[1], "JPY", "100000"),
        (users[2], "EUR", "600.00"),
        (users[2], "KWD", "200.000"),
    ]
    wallets = {user.pk: WalletFactory(owner=user) for user in users}
    balances = [funded_balance(currency=code, amount=amount, wallet=wallets[user.pk]) for user, code, amount in plan]
    currencies = {currency.code: currency for currency in Currency.objects.all()}
    ceilings = {"USD": 150, "EUR": 150, "JPY": 20000, "KWD": 50}
    rates = {(rate.base_id, rate.quote_id): rate.rate for rate in ExchangeRate.objects.filter(valid_to__isnull=True)}

    def mix(index: int) -> list[tuple[str, Any]]:
        rng = random.Random(1000 + index)
        done: list[tuple[str, Any]] = []
        payments: list[Transaction] = []
        for _ in range(MIX_OPERATIONS):
            balance = rng.choice(balances)
            owner = balance.wallet.owner
            amount = _random_amount(rng, currencies[balance.currency_id], ceilings[balance.currency_id])
            kind = rng.choice(["deposit", "withdrawal", "payment", "transfer", "transfer", "refund"])
            try:
                if kind == "deposit":
                    entry = services.deposit_create(
                        wallet_balance_id=balance.pk, amount=amount, owner=owner, created_by=owner
                    )
                elif kind == "withdrawal":
                    entry = services.withdrawal_create(
                        wallet_balance_id=balance.pk, amount=amount, owner=owner, created_by=owner
                    )
                elif kind == "payment":
                    entry = services.payment_create(
                        wallet_balance_id=balance.pk, amount=amount, merchant="Shop", owner=owner, created_by=owner
                    )
                    payments.append(entry)
                elif kind == "transfer":
                    destination = rng.choice([other for other in balances if other.pk != balance.pk])
                    entry = services.transfer_create(
                        from_wallet_balance_id=balance.pk,
                        to_wallet_balance_id=destination.pk,
                        amount=amount,
                        owner=owner,
                        created_by=owner,
                    )
                else:
                    if not payments:
                        continue
                    payment = rng.choice(payments)
                    minor = 10 ** currencies[payment.currency_id].minor_unit
                    refund = Decimal(rng.randint(1, int(payment.amount * minor))) / minor
                    entry = services.refund_create(payment_id=payment.pk, amount=refund, created_by=None)
                done.append((kind, entry))
            except (InsufficientFunds, AmountTooSmall, RefundExceedsPayment) as exc:
                done.append(("refused", exc))
        return done

    seeded = {balance.pk: balance.amount for balance in balances}
    outcomes = run_in_threads(mix, MIX_THREADS)

    assert unexpected(outcomes) == []
    # What the threads were told, replayed on paper: every 201 moved exactly its money, every refusal none.
    expected = dict(seeded)
    legs = 0
    for outcome in outcomes:
        for kind, entry in outcome.result:
            if kind == "refused":
                continue
            legs += 1
            if entry.type in (TransactionType.DEPOSIT, TransactionType.REFUND):
                expected[entry.wallet_balance_id] += entry.amount
            elif entry.type in (TransactionType.WITHDRAWAL, TransactionType.PAYMENT):
                expected[entry.wallet_balance_id] -= entry.amount
            else:
                assert entry.type == TransactionType.TRANSFER_OUT
                destination = next(b for b in balances if b.pk == entry.related_wallet_balance_id)
                if destination.currency_id == entry.currency_id:
                    assert entry.exchange_rate is None
                    credit = entry.amount
                else:
                    assert entry.exchange_rate == rates[entry.currency_id, destination.currency_id]
                    credit = (entry.amount * entry.exchange_rate).quantize(
                        Decimal(1).scaleb(-currencies[destination.currency_id].minor_unit), rounding=ROUND_DOWN
                    )
                expected[entry.wallet_balance_id] -= entry.amount
                expected[destination.pk] += credit
                legs += 1
    kinds = Counter(kind for outcome in outcomes for kind, _ in outcome.result)
    assert kinds["transfer"] > 0 and kinds["refused"] > 0, kinds  # the mix really mixed

    actual = dict(WalletBalance.objects.filter(pk__in=seeded).values_list("pk", "amount"))
    assert actual == expected
    assert Transaction.objects.count() == len(balances) + legs
    assert_ledger_invariants()

    # Per currency: what came in, less what went out, plus or minus the FX legs.
    flows: dict[str, Decimal] = defaultdict(Decimal)
    for entry in Transaction.objects.all():
        flows[entry.currency_id] += entry.amount if entry.type in CREDIT_TYPES else -entry.amount
    assert totals_by_currency() == dict(flows)


# --- 4. the row lock is the fence when Redis is not ---------------------------------------


def test_without_redis_locks_the_row_lock_still_prevents_a_double_spend(monkeypatch: pytest.MonkeyPatch) -> None:
    bypass_redis_locks(monkeypatch)
    balance = funded_balance(amount="100.00")

    outcomes = run_in_threads(
        lambda _: services.withdrawal_create(
            wallet_balance_id=balance.pk, amount=Decimal("100.00"), owner=None, created_by=None
        ),
        20,
    )

    assert unexpected(outcomes, InsufficientFunds) == []
    assert sum(o.error is None for o in outcomes) == 1
    balance.refresh_from_db()
    assert balance.amount == 0
    assert len(withdrawal_entries(balance)) == 1
    assert_ledger_invariants([balance.pk])


def _backends_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        (count,) = cursor.fetchone()
    return count


def test_a_redis_lock_that_expires_under_a_slow_movement_is_fenced_by_the_row_lock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    balance = funded_balance(amount="100.00")
    booked = threading.Event()
    may_commit = threading.Event()
    results: dict[str, Outcome] = {"slow": Outcome(), "next": Outcome()}

    def stall(entry: Transaction) -> None:
        # Inside the slow movement's database transaction: entries written, row lock held, not committed.
        booked.set()
        assert may_commit.wait(JOIN_TIMEOUT_SECONDS)

    def withdraw_all(name: str, on_booked: Callable[[Transaction], None] | None) -> None:
        try:
            results[name].result = services.withdrawal_create(
                wallet_balance_id=balance.pk,
                amount=Decimal("100.00"),
                owner=None,
                created_by=None,
                on_booked=on_booked,
            )
        except BaseException as exc:  # noqa: BLE001 - judged below
            results[name].error = exc
        finally:
            connection.close()

    slow = threading.Thread(target=withdraw_all, args=("slow", stall), daemon=True)
    slow.start()
    try:
        assert booked.wait(10), "the slow movement never reached its booking"
        # Its Redis lock "expires": the key is gone while its transaction still holds the row.
        assert locks.get_backend().client.delete(redis_lock_key(balance.pk)) == 1

        following = threading.Thread(target=withdraw_all, args=("next", None), daemon=True)
        following.start()
        # The next movement gets the Redis lock at once, then must wait on the row lock.
        deadline = time.monotonic() + 10
        while _backends_waiting_on_a_lock() == 0 and following.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert following.is_alive() and _backends_waiting_on_a_lock() == 1, (
            f"the next movement did not wait on the row lock: {results['next']}"
        )
    finally:
        may_commit.set()
    slow.join(JOIN_TIMEOUT_SECONDS)
    following.join(JOIN_TIMEOUT_SECONDS)
    assert not slow.is_alive() and not following.is_alive()

    # It read the balance the slow one committed, not the one it saw before its lock: no double spend.
    assert results["slow"].error is None, results["slow"].error
    assert isinstance(results["next"].error, InsufficientFunds), results["next"]
    balance.refresh_from_db()
    assert balance.amount == 0
    assert len(withdrawal_entries(balance)) == 1
    assert_ledger_invariants([balance.pk])
    # The slow one found its lock gone (or another's) at release: a warning, not an error, and not a
    # release of the other movement's lock (python-redis-lock's release checks the holder's id).
    assert "balance lock expired before release" in caplog.messages


def test_concurrent_refunds_of_one_payment_refund_it_once() -> None:
    balance = funded_balance(amount="100.00")
    payment = services.payment_create(
        wallet_balance_id=balance.pk, amount=Decimal("40.00"), merchant="Shop", owner=None, created_by=None
    )

    outcomes = run_in_threads(
        lambda _: services.refund_create(payment_id=payment.pk, amount=None, created_by=None),
        10,
    )

    assert unexpected(outcomes, RefundExceedsPayment) == []
    assert sum(o.error is None for o in outcomes) == 1
    balance.refresh_from_db()
    assert balance.amount == Decimal("100.00")
    assert Transaction.objects.filter(type=TransactionType.REFUND).count() == 1
    assert_ledger_invariants([balance.pk])


# --- 5. a lock wait that runs out ---------------------------------------------------------


def _ledger_snapshot() -> list[tuple[Any, ...]]:
    return sorted(Transaction.objects.values_list("wallet_balance_id", "sequence", "balance_after"))


def test_a_lock_wait_that_runs_out_raises_lock_timeout_and_writes_nothing(short_lock_wait: None) -> None:
    busy = funded_balance(amount="100.00")
    free = funded_balance(amount="100.00")
    before = _ledger_snapshot()

    with held_in_redis(busy.pk):
        with pytest.raises(LockTimeout):
            services.withdrawal_create(wallet_balance_id=busy.pk, amount=Decimal("1.00"), owner=None, created_by=None)
        # A transfer whose other balance is busy times out too, and gives back the lock it already held.
        with pytest.raises(LockTimeout):
            services.transfer_create(
                from_wallet_balance_id=free.pk,
                to_wallet_balance_id=busy.pk,
                amount=Decimal("1.00"),
                owner=None,
                created_by=None,
            )
        assert not locks.get_backend().client.exists(redis_lock_key(free.pk))

    assert _ledger_snapshot() == before
    assert dict(WalletBalance.objects.values_list("pk", "amount")) == {busy.pk: 100, free.pk: 100}


def test_a_lock_wait_that_runs_out_answers_429_lock_timeout_over_http(short_lock_wait: None) -> None:
    user = UserFactory()
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    body = {"wallet_balance_id": str(balance.pk), "amount": "10.00"}
    before = _ledger_snapshot()

    with held_in_redis(balance.pk):
        response = client.post(WITHDRAW_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-me")

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS, response.json()
    assert response.json()["error"]["code"] == "lock_timeout"
    assert int(response.headers["Retry-After"]) >= 1
    assert _ledger_snapshot() == before
    balance.refresh_from_db()
    assert balance.amount == Decimal("100.00")
    # A 429 is not stored: the same key, once the balance is free, carries the movement out.
    assert not IdempotencyRecord.objects.exists()
    retry = client.post(WITHDRAW_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-me")
    assert retry.status_code == HTTPStatus.CREATED, retry.json()
    assert "Idempotent-Replayed" not in retry.headers
    balance.refresh_from_db()
    assert balance.amount == Decimal("90.00")
    assert_ledger_invariants([balance.pk])
