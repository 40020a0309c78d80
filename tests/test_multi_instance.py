"""Two gunicorn instances, one PostgreSQL and one Redis: as safe as one (DESIGN.md, "Scaling out").

Both instances are hammered at once from threads with deposits, withdrawals
and transfers both ways on a hot pair and across several balances of two
users. Afterwards the books must agree to the cent with what the clients were
told: every balance equals its opening amount plus what the 201 answers
moved, money is conserved, no balance is negative, every `balance_after`
chain is unbroken and ends at its balance, and no request got a 5xx.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from uuid import UUID

import pytest

from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.live import Http, access_token, live_gunicorns
from transactions.models import CREDIT_TYPES, Transaction, TransactionType
from wallets.models import WalletBalance

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

API = "/api/v1/transactions"
THREADS = 16
REQUESTS_PER_THREAD = 32
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Movement:
    kind: str  # deposit, withdraw, transfer
    token: str
    source: UUID
    amount: Decimal
    destination: UUID | None = None

    def request(self) -> tuple[str, dict[str, str]]:
        if self.kind == "transfer":
            return f"{API}/transfer/", {
                "from_wallet_balance_id": str(self.source),
                "to_wallet_balance_id": str(self.destination),
                "amount": str(self.amount),
            }
        return f"{API}/{self.kind}/", {"wallet_balance_id": str(self.source), "amount": str(self.amount)}


@dataclass(frozen=True)
class Outcome:
    movement: Movement
    port: int
    status: int
    code: str | None


def assert_chain_ends_at_balance(balance: WalletBalance) -> None:
    """Sequences 1..n without gaps, each `balance_after` follows from the one before, the last is the balance."""
    entries = list(Transaction.objects.filter(wallet_balance_id=balance.pk).order_by("sequence"))
    assert [entry.sequence for entry in entries] == list(range(1, len(entries) + 1))
    running = Decimal(0)
    for entry in entries:
        running += entry.amount if entry.type in CREDIT_TYPES else -entry.amount
        assert entry.balance_after == running, (balance.pk, entry.sequence, entry.balance_after, running)
        assert entry.balance_after >= 0
    assert balance.amount == running
    assert balance.last_sequence == len(entries)


def test_two_instances_hammered_at_once_conserve_money_and_keep_every_chain():
    alice, bob = UserFactory(), UserFactory()
    opening = {
        "hot_a": (alice, "1000.00"),
        "hot_b": (bob, "1000.00"),
        "alice_1": (alice, "300.00"),
        "alice_2": (alice, "300.00"),
        "bob_1": (bob, "300.00"),
        "bob_2": (bob, "300.00"),
    }
    balances = {
        name: funded_balance(amount=amount, wallet=WalletFactory(owner=owner))
        for name, (owner, amount) in opening.items()
    }
    opened = {balances[name].pk: Decimal(amount) for name, (_, amount) in opening.items()}
    tokens = {alice.pk: access_token(alice), bob.pk: access_token(bob)}
    owner_of = {balances[name].pk: owner.pk for name, (owner, _) in opening.items()}
    ids = {name: balance.pk for name, balance in balances.items()}

    def plan(rng: random.Random) -> Movement:
        amount = Decimal(rng.randint(1, 15000)) * CENT  # up to 150.00: some withdrawals must be refused
        roll = rng.random()
        if roll < 0.4:  # the hot pair, both ways
            source, destination = rng.choice([(ids["hot_a"], ids["hot_b"]), (ids["hot_b"], ids["hot_a"])])
        elif roll < 0.6:  # across several balances and users
            source = rng.choice(list(ids.values()))
            destination = rng.choice([pk for pk in ids.values() if pk != source])
        else:
            kind = "deposit" if roll < 0.8 else "withdraw"
            source = rng.choice(list(ids.values()))
            return Movement(kind, tokens[owner_of[source]], source, amount)
        return Movement("transfer", tokens[owner_of[source]], source, amount, destination)

    outcomes: list[Outcome] = []
    failures: list[BaseException] = []
    guard = threading.Lock()

    with live_gunicorns(2, workers=2) as (first, second):
        instances = [first.http, second.http]
        start = threading.Barrier(THREADS)

        def client(seed: int) -> None:
            rng = random.Random(seed)
            mine: list[Outcome] = []
            try:
                start.wait(timeout=30)
                for _ in range(REQUESTS_PER_THREAD):
                    movement = plan(rng)
                    server: Http = rng.choice(instances)
                    path, body = movement.request()
                    reply = server.post(path, body, token=movement.token)
                    mine.append(Outcome(movement, server.port, reply.status, reply.error_code))
            except BaseException as exc:  # noqa: BLE001 - handed back to the test
                with guard:
                    failures.append(exc)
            with guard:
                outcomes.extend(mine)

        threads = [threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        logs = first.output() + second.output()

    assert not failures, failures
    assert len(outcomes) == THREADS * REQUESTS_PER_THREAD
    statuses = Counter((outcome.status, outcome.code) for outcome in outcomes)
    assert all(status < 500 for status, _ in statuses), (statuses, logs)
    # A refusal by the rules or a lock wait that ran out are the only other answers the contract allows here.
    assert set(statuses) <= {
        (HTTPStatus.CREATED, None),
        (HTTPStatus.UNPROCESSABLE_ENTITY, "insufficient_funds"),
        (HTTPStatus.TOO_MANY_REQUESTS, "lock_timeout"),
    }, statuses
    booked = [outcome for outcome in outcomes if outcome.status == HTTPStatus.CREATED]
    assert len(booked) > len(outcomes) // 2, statuses
    assert {outcome.port for outcome in booked} == {first.port, second.port}
    assert statuses[HTTPStatus.UNPROCESSABLE_ENTITY, "insufficient_funds"] > 0, "the load never hit the funds rule"

    # What the clients were told must be exactly what the books say.
    expected = dict(opened)
    entries_expected: dict[UUID, int] = defaultdict(lambda: 1)  # the opening deposit
    for outcome in booked:
        movement = outcome.movement
        if movement.kind == "deposit":
            expected[movement.source] += movement.amount
        else:
            expected[movement.source] -= movement.amount
        entries_expected[movement.source] += 1
        if movement.destination is not None:
            expected[movement.destination] += movement.amount
            entries_expected[movement.destination] += 1

    final = {balance.pk: balance for balance in WalletBalance.objects.filter(pk__in=list(opened))}
    for pk, balance in final.items():
        assert balance.amount == expected[pk], (pk, balance.amount, expected[pk])
        assert balance.amount >= 0
        assert balance.entries.count() == entries_expected[pk]
        assert_chain_ends_at_balance(balance)

    deposited = sum((o.movement.amount for o in booked if o.movement.kind == "deposit"), Decimal(0))
    withdrawn = sum((o.movement.amount for o in booked if o.movement.kind == "withdraw"), Decimal(0))
    assert sum(balance.amount for balance in final.values()) == sum(opened.values()) + deposited - withdrawn

    transfers = [o for o in booked if o.movement.kind == "transfer"]
    legs = Counter(
        Transaction.objects.filter(
            type__in=[TransactionType.TRANSFER_OUT, TransactionType.TRANSFER_IN], wallet_balance_id__in=list(opened)
        ).values_list("reference", flat=True)
    )
    assert len(legs) == len(transfers)
    assert set(legs.values()) == {2}
