"""A cross-currency transfer books at the pair's rate as it is once the balances are locked.

The transfer reads the rate before the locks to refuse what it can early; a
rate that staff replace or close while the transfer waits for a busy balance
must not be booked. Real threads, the real Redis lock and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from conftest import held_in_redis
from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.invariants import assert_ledger_invariants
from transactions import services
from transactions.batches.services import batch_create
from transactions.models import Transaction, TransactionType
from wallet_project.errors import RateUnavailable
from wallets.models import ExchangeRate
from wallets.services import exchange_rate_create

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_until_a_client_blocks(timeout: float = 5.0) -> None:
    """Until some Redis client waits in BLPOP: the transfer, past its pre-lock read, waiting for the lock."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if any(entry.get("cmd") == "blpop" or "b" in entry.get("flags", "") for entry in client.client_list()):
                return
            time.sleep(0.01)
    finally:
        client.close()
    raise AssertionError("the transfer never waited for the lock")


def _transfer_in_thread(source_id: Any, destination_id: Any, owner: Any) -> tuple[threading.Thread, dict]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["entry"] = services.transfer_create(
                from_wallet_balance_id=source_id,
                to_wallet_balance_id=destination_id,
                amount=Decimal("10.00"),
                owner=owner,
                created_by=owner,
            )
        except Exception as exc:  # noqa: BLE001 - handed to the test's thread to assert on
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.fixture
def usd_to_eur():
    owner = UserFactory()
    source = funded_balance(wallet=WalletFactory(owner=owner), currency="USD", amount="100.00")
    destination = funded_balance(wallet=WalletFactory(owner=owner), currency="EUR", amount="0")
    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.92"), created_by=None)
    return owner, source, destination


def test_a_rate_replaced_during_the_lock_wait_is_the_one_booked(usd_to_eur):
    owner, source, destination = usd_to_eur

    with held_in_redis(source.pk):
        thread, outcome = _transfer_in_thread(source.pk, destination.pk, owner)
        _wait_until_a_client_blocks()
        exchange_rate_create(base="USD", quote="EUR", rate=Decimal("1.08"), created_by=None)
    thread.join(timeout=10)

    assert "error" not in outcome, outcome
    legs = {entry.type: entry for entry in Transaction.objects.filter(reference=outcome["entry"].reference)}
    assert legs[TransactionType.TRANSFER_OUT].exchange_rate == Decimal("1.08")
    assert legs[TransactionType.TRANSFER_IN].exchange_rate == Decimal("1.08")
    assert legs[TransactionType.TRANSFER_IN].amount == Decimal("10.80")
    destination.refresh_from_db()
    assert destination.amount == Decimal("10.80")
    assert_ledger_invariants([source.pk, destination.pk])


def test_a_rate_closed_during_the_lock_wait_refuses_the_transfer_without_trace(usd_to_eur):
    owner, source, destination = usd_to_eur
    entries_before = Transaction.objects.count()

    with held_in_redis(source.pk):
        thread, outcome = _transfer_in_thread(source.pk, destination.pk, owner)
        _wait_until_a_client_blocks()
        ExchangeRate.objects.filter(base_id="USD", quote_id="EUR", valid_to__isnull=True).update(
            valid_to=timezone.now()
        )
    thread.join(timeout=10)

    assert isinstance(outcome.get("error"), RateUnavailable), outcome
    assert Transaction.objects.count() == entries_before
    source.refresh_from_db()
    destination.refresh_from_db()
    assert (source.amount, destination.amount) == (Decimal("100.00"), Decimal("0.00"))


def test_a_batchs_conversions_book_the_rate_as_it_is_once_its_balances_are_locked(usd_to_eur):
    """Three balances (so the batch reads the rates among their currencies, not a pair's): the rate replaced while
    the batch waits is the one both of its conversions book; a closed one refuses the batch, naming the first."""
    owner, source, destination = usd_to_eur
    other = funded_balance(wallet=WalletFactory(owner=owner), currency="USD", amount="0")
    movements = [
        {
            "type": "transfer",
            "from_wallet_balance_id": source.pk,
            "to_wallet_balance_id": other.pk,
            "amount": Decimal("1"),
        },
        {
            "type": "transfer",
            "from_wallet_balance_id": source.pk,
            "to_wallet_balance_id": destination.pk,
            "amount": Decimal("10"),
        },
        {
            "type": "transfer",
            "from_wallet_balance_id": source.pk,
            "to_wallet_balance_id": destination.pk,
            "amount": Decimal("5"),
        },
    ]
    outcome: dict[str, Any] = {}

    def book() -> None:
        try:
            outcome["batch"] = batch_create(movements=movements, owner=owner, created_by=owner)
        except Exception as exc:  # noqa: BLE001 - handed to the test's thread to assert on
            outcome["error"] = exc
        finally:
            connection.close()

    with held_in_redis(source.pk):
        thread = threading.Thread(target=book, daemon=True)
        thread.start()
        _wait_until_a_client_blocks()
        exchange_rate_create(base="USD", quote="EUR", rate=Decimal("1.08"), created_by=None)
    thread.join(timeout=10)

    assert "error" not in outcome, outcome
    _, ten, five = outcome["batch"].entries
    assert (ten.exchange_rate, five.exchange_rate) == (Decimal("1.08"), Decimal("1.08"))
    destination.refresh_from_db()
    assert destination.amount == Decimal("16.20")
    assert_ledger_invariants([source.pk, destination.pk, other.pk])

    ExchangeRate.objects.filter(base_id="USD", quote_id="EUR", valid_to__isnull=True).update(valid_to=timezone.now())
    with pytest.raises(RateUnavailable) as refused:
        batch_create(movements=movements, owner=owner, created_by=owner)
    assert refused.value.details["index"] == 1
