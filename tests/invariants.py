"""Assertions of the ledger invariants (DESIGN.md, "Invariants the code and the database both hold").

Any test that moves money may end with `assert_ledger_invariants()`: it reads
the balances and entries back from the database and checks, independently of
the services' own arithmetic, that

* every balance is non-negative, equals Σ credits − Σ debits of its entries and
  its newest `balance_after`, and its `last_sequence` is its entry count;
* each balance's entries have the sequences 1..n and form an unbroken
  `balance_after` chain;
* every transfer reference has exactly two legs, one TRANSFER_OUT and one
  TRANSFER_IN, pointing at each other, and the credit is the debit times the
  recorded rate rounded down to the destination's minor unit (equal, with no
  rate, between two balances of one currency);
* no payment, and no hold's captures together, has been refunded beyond its amount;
* each balance reserves exactly what its active holds have left
  (`0 <= held_amount <= amount`), and each hold's `captured_amount` is the sum
  of the CAPTURE entries under its reference, never more than its amount.

The concurrency suites run their threads with `run_in_threads` (below) and
judge what each thread was told, then end with these assertions.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any
from uuid import UUID

import pytest
from django.db import connection
from django.db.models import Sum

from tests.holds import active_remainders
from transactions.models import CREDIT_TYPES, REFUNDABLE_TYPES, Hold, HoldStatus, Transaction, TransactionType
from transactions.posting import engine
from wallets.models import Currency, WalletBalance

TRANSFER_TYPES = (TransactionType.TRANSFER_OUT, TransactionType.TRANSFER_IN)


def _round_down(amount: Decimal, minor_unit: int) -> Decimal:
    # Our own arithmetic, not wallet_project.money: the check must not share the code it checks.
    with localcontext() as context:
        context.prec = 100
        return amount.quantize(Decimal(1).scaleb(-minor_unit), rounding=ROUND_DOWN)


def _signed(entry: Transaction) -> Decimal:
    return entry.amount if entry.type in CREDIT_TYPES else -entry.amount


def assert_balance_chains(balance_ids: Iterable[UUID] | None = None) -> None:
    """Each balance: amount ≥ 0, amount == Σ credits − Σ debits, sequences 1..n, `balance_after` chained."""
    balances = WalletBalance.objects.all()
    if balance_ids is not None:
        balances = balances.filter(pk__in=list(balance_ids))
    entries_of: dict[UUID, list[Transaction]] = defaultdict(list)
    for entry in Transaction.objects.filter(wallet_balance__in=balances).order_by("wallet_balance_id", "sequence"):
        entries_of[entry.wallet_balance_id].append(entry)

    for balance in balances:
        entries = entries_of[balance.pk]
        assert balance.amount >= 0, f"balance {balance.pk} is negative: {balance.amount}"
        sequences = [entry.sequence for entry in entries]
        assert sequences == list(range(1, len(entries) + 1)), f"balance {balance.pk}: sequences {sequences}"
        assert balance.last_sequence == len(entries), (
            f"balance {balance.pk}: last_sequence {balance.last_sequence}, {len(entries)} entries"
        )
        running = Decimal(0)
        for entry in entries:
            running += _signed(entry)
            assert entry.balance_after == running, (
                f"balance {balance.pk}: entry {entry.sequence} ({entry.type} {entry.amount}) says "
                f"{entry.balance_after}, the chain gives {running}"
            )
            assert entry.currency_id == balance.currency_id and entry.wallet_id == balance.wallet_id
        assert balance.amount == running, f"balance {balance.pk} holds {balance.amount}; its entries sum to {running}"


def assert_transfers_paired(balance_ids: Iterable[UUID] | None = None) -> None:
    """Each transfer reference: exactly one OUT and one IN leg, crossed, credit == round_down(debit × rate)."""
    legs = Transaction.objects.filter(type__in=TRANSFER_TYPES)
    if balance_ids is not None:
        references = legs.filter(wallet_balance_id__in=list(balance_ids)).values("reference")
        legs = legs.filter(reference__in=references)
    minor_units = dict(Currency.objects.values_list("code", "minor_unit"))
    legs_of: dict[UUID, list[Transaction]] = defaultdict(list)
    for leg in legs:
        legs_of[leg.reference].append(leg)

    for reference, pair in legs_of.items():
        assert sorted(leg.type for leg in pair) == [TransactionType.TRANSFER_IN, TransactionType.TRANSFER_OUT], (
            f"transfer {reference} has legs {[leg.type for leg in pair]}"
        )
        debit = next(leg for leg in pair if leg.type == TransactionType.TRANSFER_OUT)
        credit = next(leg for leg in pair if leg.type == TransactionType.TRANSFER_IN)
        assert debit.related_wallet_balance_id == credit.wallet_balance_id, (
            f"transfer {reference}: OUT points elsewhere"
        )
        assert credit.related_wallet_balance_id == debit.wallet_balance_id, f"transfer {reference}: IN points elsewhere"
        assert debit.wallet_balance_id != credit.wallet_balance_id, f"transfer {reference} moves within one balance"
        assert debit.exchange_rate == credit.exchange_rate, f"transfer {reference}: the legs record different rates"
        if debit.currency_id == credit.currency_id:
            assert debit.exchange_rate is None, f"transfer {reference}: a rate within one currency"
            assert credit.amount == debit.amount, f"transfer {reference}: {debit.amount} out, {credit.amount} in"
        else:
            assert debit.exchange_rate is not None, f"transfer {reference}: no rate between two currencies"
            with localcontext() as context:
                context.prec = 100
                expected = _round_down(debit.amount * debit.exchange_rate, minor_units[credit.currency_id])
            assert credit.amount == expected, (
                f"transfer {reference}: {debit.amount} {debit.currency_id} × {debit.exchange_rate} credited "
                f"{credit.amount} {credit.currency_id}, expected {expected}"
            )


def assert_refunds_within_payments() -> None:
    """Nothing has been refunded beyond what was paid under its reference: a payment's amount, or the sum of a
    hold's captures (refunds carry the reference of what they refund)."""
    paid: dict[tuple[UUID, UUID], Decimal] = defaultdict(Decimal)
    for entry in Transaction.objects.filter(type__in=REFUNDABLE_TYPES):
        paid[entry.reference, entry.wallet_balance_id] += entry.amount
    refunded: dict[tuple[UUID, UUID], Decimal] = defaultdict(Decimal)
    for entry in Transaction.objects.filter(type=TransactionType.REFUND):
        key = (entry.reference, entry.wallet_balance_id)
        assert key in paid, f"refund {entry.pk} refers to no payment or capture of its balance"
        refunded[key] += entry.amount
    for key, total in refunded.items():
        assert total <= paid[key], f"{paid[key]} paid under {key[0]} was refunded {total}"


def assert_holds_consistent(balance_ids: Iterable[UUID] | None = None) -> None:
    """Each balance holds back what its active holds have left; each hold's captures are its CAPTURE entries.

    `held_amount` is compared with the holds' stored status: a hold past its
    expiry that no posting has released yet still counts, as it does in the row.
    """
    balances = WalletBalance.objects.all()
    if balance_ids is not None:
        balances = balances.filter(pk__in=list(balance_ids))
    for balance in balances:
        assert 0 <= balance.held_amount <= balance.amount, (
            f"balance {balance.pk} holds back {balance.held_amount} of {balance.amount}"
        )
        assert balance.held_amount == active_remainders(balance), (
            f"balance {balance.pk} holds back {balance.held_amount}; its active holds have "
            f"{active_remainders(balance)} left"
        )
    captures = Transaction.objects.filter(type=TransactionType.CAPTURE, wallet_balance__in=balances)
    captured_under = {
        (reference, balance_id): total
        for reference, balance_id, total in captures.values("reference", "wallet_balance_id")
        .annotate(total=Sum("amount"))
        .values_list("reference", "wallet_balance_id", "total")
    }
    for hold in Hold.objects.filter(wallet_balance__in=balances):
        captured = captured_under.pop((hold.reference, hold.wallet_balance_id), Decimal(0))
        assert hold.captured_amount == captured, (
            f"hold {hold.pk} says {hold.captured_amount} captured; its CAPTURE entries sum to {captured}"
        )
        assert 0 <= hold.captured_amount <= hold.amount, f"hold {hold.pk}: {hold.captured_amount} of {hold.amount}"
        assert (hold.status == HoldStatus.ACTIVE) == (hold.resolved_at is None), (
            f"hold {hold.pk} is {hold.status}, resolved at {hold.resolved_at}"
        )
        if hold.status == HoldStatus.CAPTURED:
            assert hold.captured_amount > 0, f"hold {hold.pk} is captured with nothing captured"
    assert not captured_under, f"CAPTURE entries under no hold of their balance: {captured_under}"


def assert_ledger_invariants(balance_ids: Iterable[UUID] | None = None) -> None:
    """All of the above, for these balances (default: every balance in the database)."""
    ids = None if balance_ids is None else list(balance_ids)
    assert_balance_chains(ids)
    assert_transfers_paired(ids)
    assert_refunds_within_payments()
    assert_holds_consistent(ids)


def totals_by_currency() -> dict[str, Decimal]:
    """Σ of every balance's amount, per currency."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for currency, amount in WalletBalance.objects.values_list("currency_id", "amount"):
        totals[currency] += amount
    return dict(totals)


# --- threads ---------------------------------------------------------------------------------

JOIN_TIMEOUT_SECONDS = 60


@dataclass
class Outcome:
    result: Any = None
    error: BaseException | None = None


def run_in_threads(work: Callable[[int], Any], count: int) -> list[Outcome]:
    """Run `work(0)` … `work(count - 1)` in `count` threads released together; every thread must finish.

    Each thread has its own database connection (Django gives one per thread)
    and closes it at the end. An exception is an outcome for the test to judge,
    not a crash of the harness.
    """
    start = threading.Barrier(count)
    outcomes = [Outcome() for _ in range(count)]

    def runner(index: int) -> None:
        try:
            start.wait(timeout=JOIN_TIMEOUT_SECONDS)
            outcomes[index].result = work(index)
        except BaseException as exc:  # noqa: BLE001 - recorded for the test to judge
            outcomes[index].error = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT_SECONDS
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"{len(stuck)} of {count} threads still running after {JOIN_TIMEOUT_SECONDS} s: deadlock?"
    return outcomes


def unexpected(outcomes: list[Outcome], *allowed: type[BaseException]) -> list[BaseException]:
    """The errors the threads raised other than the `allowed` refusals."""
    return [o.error for o in outcomes if o.error is not None and not isinstance(o.error, allowed)]


@contextmanager
def _no_redis_locks(balance_ids: Any, gate: Any = None, mark: Any = None) -> Iterator[None]:
    yield


def bypass_redis_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Movements take no Redis lock at all: only the PostgreSQL row lock stands between them."""
    monkeypatch.setattr(engine, "balance_locks", _no_redis_locks)
