"""Batches under concurrency: real threads against the real PostgreSQL and Redis.

A batch locks every balance it touches once, in sorted order, as a single
movement locks its one or two: batches racing each other and single movements
on overlapping balances never deadlock (with the Redis locks, and with the row
locks alone), never overdraw, conserve money to the cent, keep every chain
unbroken, and a refused batch leaves nothing behind.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.invariants import (
    assert_ledger_invariants,
    bypass_redis_locks,
    run_in_threads,
    totals_by_currency,
    unexpected,
)
from transactions import services
from transactions.batches.services import batch_create
from transactions.models import Transaction, TransactionType
from wallet_project.errors import InsufficientFunds, LockTimeout
from wallets.models import WalletBalance

pytestmark = pytest.mark.django_db(transaction=True)


def _transfer(source: WalletBalance, destination: WalletBalance, amount: str) -> dict[str, Any]:
    return {
        "type": "transfer",
        "from_wallet_balance_id": source.pk,
        "to_wallet_balance_id": destination.pk,
        "amount": Decimal(amount),
        "description": "",
    }


def _withdrawal(balance: WalletBalance, amount: str) -> dict[str, Any]:
    return {"type": "withdraw", "wallet_balance_id": balance.pk, "amount": Decimal(amount), "description": ""}


@pytest.mark.parametrize("redis_locks", [True, False], ids=["redis-and-row-locks", "row-locks-only"])
def test_batches_racing_each_other_and_single_transfers_finish_and_conserve_money(
    redis_locks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each thread books batches of transfers in random directions among eight balances of four owners (every
    batch overlaps every other), or the same transfers one by one; some batches cannot be afforded."""
    if not redis_locks:
        bypass_redis_locks(monkeypatch)
    owners = [UserFactory() for _ in range(4)]
    balances = [funded_balance(amount="50.00", wallet=WalletFactory(owner=owners[k % 4])) for k in range(8)]
    before = totals_by_currency()
    threads, rounds = 8, 4

    def work(index: int) -> list[tuple[str, Any]]:
        rng = random.Random(index)
        done: list[tuple[str, Any]] = []
        for _ in range(rounds):
            pairs = [rng.sample(balances, 2) for _ in range(rng.randint(5, 30))]
            movements = [
                _transfer(source, destination, f"{rng.randint(1, 900) / 100:.2f}") for source, destination in pairs
            ]
            if index % 4 == 3:  # one thread in four moves the same money one transfer at a time
                for source, destination in pairs:
                    try:
                        entry = services.transfer_create(
                            from_wallet_balance_id=source.pk,
                            to_wallet_balance_id=destination.pk,
                            amount=Decimal("0.50"),
                            owner=source.wallet.owner,
                            created_by=None,
                        )
                        done.append(("single", entry))
                    except InsufficientFunds as exc:
                        done.append(("refused", exc))
                continue
            try:
                done.append(("batch", batch_create(movements=movements, owner=None, created_by=None)))
            except InsufficientFunds as exc:
                done.append(("refused batch", exc))
        return done

    outcomes = run_in_threads(work, threads)

    assert unexpected(outcomes, LockTimeout) == []
    results = [result for outcome in outcomes if outcome.result for result in outcome.result]
    booked = [batch for kind, batch in results if kind == "batch"]
    singles = [entry for kind, entry in results if kind == "single"]
    refused = [error for kind, error in results if kind == "refused batch"]
    assert booked and refused, "the race must see both booked and refused batches"
    assert all(0 <= error.details["index"] < 30 for error in refused)  # each names the movement it stopped at
    assert totals_by_currency() == before
    # A refused batch left nothing: the ledger holds exactly the legs of what was booked.
    expected_legs = 2 * (sum(len(batch.entries) for batch in booked) + len(singles))
    assert Transaction.objects.filter(type__in=(TransactionType.TRANSFER_OUT, TransactionType.TRANSFER_IN)).count() == (
        expected_legs
    )
    assert_ledger_invariants()


def test_batches_draining_one_balance_never_overdraw_it() -> None:
    """Twelve batches of ten withdrawals of 1.00 each from one balance holding 55.00: five go through whole, the
    others are refused whole at their sixth withdrawal or before; nothing is ever taken from a refused batch."""
    user = UserFactory()
    balance = funded_balance(amount="55.00", wallet=WalletFactory(owner=user))
    spare = funded_balance(amount="0", wallet=WalletFactory(owner=user))

    def drain(_: int) -> Any:
        movements = [_withdrawal(balance, "1.00") for _ in range(10)]
        movements.insert(3, {"type": "deposit", "wallet_balance_id": spare.pk, "amount": Decimal("0.01")})
        return batch_create(movements=movements, owner=user, created_by=user)

    outcomes = run_in_threads(drain, 12)

    assert unexpected(outcomes, InsufficientFunds) == []
    booked = [outcome.result for outcome in outcomes if outcome.error is None]
    refused = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert len(booked) == 5
    assert len(refused) == 7
    # The sixth withdrawal, after the deposit at index 3, is movement 6: where a batch finds 5.00 left, then none.
    assert {error.details["index"] for error in refused} == {6}
    balance.refresh_from_db()
    spare.refresh_from_db()
    assert balance.amount == Decimal("5.00")
    assert spare.amount == Decimal("0.05")
    assert balance.last_sequence == 1 + 5 * 10
    assert_ledger_invariants([balance.pk, spare.pk])
