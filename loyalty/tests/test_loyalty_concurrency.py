"""Cashback under real concurrency: many payers against one funding balance, booking workers and refunds at once.

Real threads against the real PostgreSQL and Redis, each with its own
connection (`tests.invariants.run_in_threads`), bounded by counts. Afterwards:
the funding balance never went below zero (its CHECK, and its chain), every
reward ended booked, unfunded or reversed, what was booked and moved back is
in the ledger in pairs, the money of all balances changed by exactly the
payments and refunds, to the cent, and `reconcile` is clean.
"""

from __future__ import annotations

import io
import queue
import random
import threading
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Sum
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from loyalty.booking import rewards_book
from loyalty.models import Reward, RewardStatus
from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.invariants import assert_ledger_invariants, run_in_threads, totals_by_currency, unexpected
from tests.loyalty import book_all, program_in
from transactions.models import Transaction, TransactionType
from transactions.services import refund_create
from wallet_project.errors import LockTimeout, RefundExceedsPayment
from wallets.models import WalletBalance

pytestmark = pytest.mark.django_db(transaction=True)

PAYERS = 16
PAYMENTS_EACH = 6
BOOKERS = 2
REFUNDS = 12
FUNDING = Decimal("9.00")  # less than the cashback of all the payments: some end unfunded


@pytest.fixture(autouse=True)
def _no_throttling(settings: Any) -> None:
    settings.THROTTLE_USER_RATE = settings.THROTTLE_ANON_RATE = "1000000/minute"


def total_of(kind: TransactionType) -> Decimal:
    return Transaction.objects.filter(type=kind).aggregate(total=Sum("amount"))["total"] or Decimal(0)


def test_payments_of_many_payers_against_one_funding_balance_conserve_money_to_the_cent() -> None:
    program = program_in("USD", earn_rate=500, funding=str(FUNDING))
    payers = [UserFactory() for _ in range(PAYERS)]
    balances = [funded_balance(amount="100.00", wallet=WalletFactory(owner=payer)) for payer in payers]
    tokens = [f"Bearer {AccessToken.for_user(payer)}" for payer in payers]
    before = totals_by_currency()["USD"]
    paid: queue.Queue[str] = queue.Queue()
    all_paid = threading.Event()
    finished = [0]
    finished_lock = threading.Lock()

    def pay(index: int) -> list[Any]:
        client = APIClient()  # one per thread: APIClient is not thread-safe
        client.credentials(HTTP_AUTHORIZATION=tokens[index])
        rng = random.Random(index)
        answers = []
        try:
            for _ in range(PAYMENTS_EACH):
                amount = f"{rng.randint(100, 999) / 100:.2f}"
                response = client.post(
                    "/api/v1/transactions/payment/",
                    {"wallet_balance_id": str(balances[index].pk), "amount": amount, "merchant": "Shop"},
                    format="json",
                )
                answers.append((response.status_code, response.json()))
                if response.status_code == HTTPStatus.CREATED:
                    paid.put(response.json()["id"])
        finally:
            with finished_lock:
                finished[0] += 1
                if finished[0] == PAYERS:
                    all_paid.set()
        return answers

    def book(_: int) -> int:
        rounds = 0
        # Bounded: at most as many rounds as there are payments, and never past the last payment's round.
        while rounds < PAYERS * PAYMENTS_EACH and not all_paid.is_set():
            rewards_book(limit=7)
            rounds += 1
        return rounds

    def refund(_: int) -> list[str]:
        outcomes = []
        for _ in range(REFUNDS):
            payment_id = paid.get(timeout=60)
            try:
                refund_create(payment_id=payment_id, amount=Decimal("1.00"), created_by=None)
                outcomes.append("refunded")
            except (LockTimeout, RefundExceedsPayment) as exc:
                outcomes.append(exc.code)
        return outcomes

    def work(index: int) -> Any:
        if index < PAYERS:
            return pay(index)
        if index < PAYERS + BOOKERS:
            return book(index)
        return refund(index)

    outcomes = run_in_threads(work, PAYERS + BOOKERS + 1)
    book_all()

    assert unexpected(outcomes) == []
    answers = [answer for outcome in outcomes[:PAYERS] for answer in outcome.result]
    assert {status for status, _ in answers} == {HTTPStatus.CREATED}, answers  # a payment never fails for loyalty
    assert all(body["loyalty"]["status"] == "pending" for _, body in answers)
    assert outcomes[-1].result.count("refunded") == REFUNDS

    # Every reward decided; the funding balance paid what was booked and got back what was reversed.
    rewards = Reward.objects.all()
    assert rewards.count() == PAYERS * PAYMENTS_EACH
    assert set(rewards.values_list("status", flat=True)) <= {RewardStatus.BOOKED, RewardStatus.UNFUNDED}
    assert rewards.filter(status=RewardStatus.UNFUNDED).exists()
    funding = WalletBalance.objects.get(pk=program.funding_balance_id)
    assert funding.amount >= 0
    assert funding.amount == (
        FUNDING - total_of(TransactionType.LOYALTY_FUNDING) + total_of(TransactionType.LOYALTY_RETURN)
    )
    assert total_of(TransactionType.LOYALTY) == total_of(TransactionType.LOYALTY_FUNDING)
    assert total_of(TransactionType.LOYALTY_REVERSAL) == total_of(TransactionType.LOYALTY_RETURN)
    booked = rewards.filter(status=RewardStatus.BOOKED).aggregate(total=Sum("booked_amount"))["total"]
    assert booked == total_of(TransactionType.LOYALTY)

    # Money moved between balances, never created: the total changed by the payments and refunds alone.
    after = totals_by_currency()["USD"]
    assert after == before - total_of(TransactionType.PAYMENT) + total_of(TransactionType.REFUND)
    assert_ledger_invariants()
    out = io.StringIO()
    call_command("reconcile", stdout=out, stderr=io.StringIO())
    assert "OK: every invariant holds." in out.getvalue()
