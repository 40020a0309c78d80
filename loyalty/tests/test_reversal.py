"""Refunds take cashback back in proportion, in the refund's own posting, limited to what the payer has available."""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus

import pytest

from conftest import client_for
from loyalty.models import Reward, RewardStatus
from tests.factories import WalletFactory, funded_balance
from tests.invariants import assert_ledger_invariants
from tests.loyalty import book_all, program_in
from transactions.holds.services import hold_capture, hold_create
from transactions.models import Transaction, TransactionType
from transactions.services import payment_create, refund_create, withdrawal_create
from wallets.models import WalletBalance

pytestmark = pytest.mark.django_db


def pay(balance, amount: str) -> Transaction:
    owner = balance.wallet.owner
    return payment_create(
        wallet_balance_id=balance.pk, amount=Decimal(amount), merchant="Shop", owner=owner, created_by=owner
    )


def refund(payment: Transaction, amount: str | None = None) -> Transaction:
    return refund_create(payment_id=payment.pk, amount=None if amount is None else Decimal(amount), created_by=None)


def amount_of(balance) -> Decimal:
    return WalletBalance.objects.get(pk=balance.pk).amount


def legs_of(payment: Transaction, *types: TransactionType) -> list[tuple[str, object, Decimal]]:
    entries = Transaction.objects.filter(reference=payment.reference, type__in=types).order_by("created_at", "id")
    return [(entry.type, entry.wallet_balance_id, entry.amount) for entry in entries]


REVERSAL = (TransactionType.LOYALTY_REVERSAL, TransactionType.LOYALTY_RETURN)


@pytest.fixture
def booked(user):
    """A payment of 100.00 that earned 3.33 (333 bps), booked; the payer has 900.00 + 3.33 left."""
    program = program_in("USD", earn_rate=333, funding="100.00")
    balance = funded_balance(amount="1000.00", wallet=WalletFactory(owner=user))
    payment = pay(balance, "100.00")
    book_all()
    return program, balance, payment


def test_a_partial_refund_takes_back_its_share_of_the_cashback(booked):
    program, balance, payment = booked

    entry = refund(payment, "40.00")

    assert entry.type == TransactionType.REFUND and entry.amount == Decimal("40.00")
    # 3.33 × 40 / 100 = 1.332, rounded down.
    assert legs_of(payment, *REVERSAL) == [
        (TransactionType.LOYALTY_REVERSAL, balance.pk, Decimal("1.33")),
        (TransactionType.LOYALTY_RETURN, program.funding_balance_id, Decimal("1.33")),
    ]
    assert amount_of(balance) == Decimal("903.33") + Decimal("40.00") - Decimal("1.33")
    assert amount_of(program.funding_balance) == Decimal("96.67") + Decimal("1.33")
    reward = Reward.objects.get(payment=payment)
    assert (reward.reversed_amount, reward.unreversed_amount, reward.refunded_amount) == (
        Decimal("1.33"),
        Decimal("0"),
        Decimal("40.00"),
    )
    assert reward.status == RewardStatus.BOOKED
    assert_ledger_invariants()


def test_partial_refunds_add_up_to_the_whole_cashback(booked):
    program, balance, payment = booked

    for part in ("33.33", "33.33", "33.34"):
        refund(payment, part)

    reversals = [amount for kind, _, amount in legs_of(payment, TransactionType.LOYALTY_REVERSAL)]
    assert reversals == [Decimal("1.10"), Decimal("1.11"), Decimal("1.12")]  # 1.1098…, 2.2197… − 1.10, then the rest
    assert sum(reversals) == Decimal("3.33")
    assert amount_of(program.funding_balance) == Decimal("100.00")
    assert amount_of(balance) == Decimal("1000.00")
    assert Reward.objects.get(payment=payment).net_amount == 0
    assert_ledger_invariants()


def test_a_full_refund_takes_back_the_whole_cashback(booked):
    program, balance, payment = booked

    refund(payment)

    assert legs_of(payment, TransactionType.LOYALTY_REVERSAL) == [
        (TransactionType.LOYALTY_REVERSAL, balance.pk, Decimal("3.33"))
    ]
    assert amount_of(balance) == Decimal("1000.00")
    assert amount_of(program.funding_balance) == Decimal("100.00")


def test_the_reversal_is_limited_to_what_the_payer_still_has_available(booked, user):
    program, balance, payment = booked
    withdrawal_create(wallet_balance_id=balance.pk, amount=Decimal("902.33"), owner=user, created_by=user)  # 1.00 left

    entry = refund(payment)

    assert entry.amount == Decimal("100.00")  # the refund is paid in full
    assert legs_of(payment, *REVERSAL) == [
        (TransactionType.LOYALTY_REVERSAL, balance.pk, Decimal("1.00")),
        (TransactionType.LOYALTY_RETURN, program.funding_balance_id, Decimal("1.00")),
    ]
    assert amount_of(balance) == Decimal("100.00")
    reward = Reward.objects.get(payment=payment)
    assert (reward.reversed_amount, reward.unreversed_amount) == (Decimal("1.00"), Decimal("2.33"))
    assert_ledger_invariants()


def test_what_could_not_be_reversed_is_not_asked_again(booked, user):
    _program, balance, payment = booked
    withdrawal_create(wallet_balance_id=balance.pk, amount=Decimal("903.33"), owner=user, created_by=user)  # empty

    refund(payment, "50.00")  # 1.665: nothing available, all of it unreversed
    refund(payment, "50.00")  # the rest, 1.67: the first refund's 50.00 is available now

    reward = Reward.objects.get(payment=payment)
    assert (reward.reversed_amount, reward.unreversed_amount) == (Decimal("1.67"), Decimal("1.66"))
    assert legs_of(payment, TransactionType.LOYALTY_REVERSAL) == [
        (TransactionType.LOYALTY_REVERSAL, balance.pk, Decimal("1.67"))
    ]
    assert amount_of(balance) == Decimal("100.00") - Decimal("1.67")
    assert_ledger_invariants()


def test_a_refund_cuts_a_reward_still_pending_and_moves_nothing(user):
    program = program_in("USD", earn_rate=1000, funding="100.00")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    payment = pay(balance, "100.00")  # 10.00, pending

    refund(payment, "25.00")

    assert legs_of(payment, *REVERSAL) == []
    reward = Reward.objects.get(payment=payment)
    assert (reward.status, reward.reversed_amount) == (RewardStatus.PENDING, Decimal("2.50"))

    book_all()

    reward.refresh_from_db()
    assert (reward.status, reward.booked_amount) == (RewardStatus.BOOKED, Decimal("7.50"))
    assert amount_of(balance) == Decimal("400.00") + Decimal("25.00") + Decimal("7.50")
    assert amount_of(program.funding_balance) == Decimal("92.50")

    refund(payment)  # the rest: 7.50 more cashback back, now moved

    assert legs_of(payment, TransactionType.LOYALTY_REVERSAL) == [
        (TransactionType.LOYALTY_REVERSAL, balance.pk, Decimal("7.50"))
    ]
    assert amount_of(balance) == Decimal("500.00")
    assert amount_of(program.funding_balance) == Decimal("100.00")
    assert_ledger_invariants()


def test_a_reward_refunded_in_full_before_booking_is_never_booked(user):
    program = program_in("USD", funding="100.00")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    payment = pay(balance, "100.00")

    refund(payment)
    done = book_all()

    reward = Reward.objects.get(payment=payment)
    assert (reward.status, reward.reversed_amount, reward.booked_amount) == (
        RewardStatus.REVERSED,
        Decimal("1.00"),
        Decimal("0"),
    )
    assert done.booked == 0
    assert not Transaction.objects.filter(type__startswith="LOYALTY").exists()
    assert amount_of(program.funding_balance) == Decimal("100.00")


def test_refunding_an_unfunded_reward_takes_nothing_back(user):
    program = program_in("USD", funding="0.50")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    payment = pay(balance, "100.00")  # 1.00 > 0.50
    book_all()

    refund(payment)

    assert Reward.objects.get(payment=payment).status == RewardStatus.UNFUNDED
    assert not Transaction.objects.filter(type__startswith="LOYALTY").exists()
    assert amount_of(balance) == Decimal("500.00")
    assert amount_of(program.funding_balance) == Decimal("0.50")


def test_a_refund_of_a_capture_takes_back_that_captures_cashback(user):
    program = program_in("USD", funding="100.00")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    hold = hold_create(wallet_balance_id=balance.pk, amount=Decimal("300.00"), owner=user, created_by=user)
    first = hold_capture(hold_id=hold.pk, amount=Decimal("100.00"), final=False, owner=user, created_by=user)
    second = hold_capture(hold_id=hold.pk, amount=Decimal("200.00"), owner=user, created_by=user)
    book_all()

    refund(second.entry, "100.00")

    rewards = {reward.payment_id: reward for reward in Reward.objects.all()}
    assert rewards[first.entry.pk].reversed_amount == 0
    assert rewards[second.entry.pk].reversed_amount == Decimal("1.00")
    assert amount_of(program.funding_balance) == Decimal("100.00") - Decimal("3.00") + Decimal("1.00")
    assert_ledger_invariants()


def test_a_refund_by_api_answers_the_refund_entry_with_the_reversal_beside_it(booked, finance_api):
    _program, balance, payment = booked

    response = finance_api.post(f"/api/v1/transactions/{payment.pk}/refund/", {"amount": "50.00"}, format="json")

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert (body["type"], body["amount"]) == ("REFUND", "50.00")
    assert body["balance_after"] == "953.33"  # the refund entry's own link in the chain
    assert amount_of(balance) == Decimal("953.33") - Decimal("1.66")


def test_the_payer_sees_the_reversal_in_the_history_and_can_filter_it(booked, user):
    _, _, payment = booked
    refund(payment, "50.00")
    client = client_for(user)

    listed = client.get("/api/v1/transactions/?type=LOYALTY_REVERSAL").json()["results"]
    earned = client.get("/api/v1/transactions/?type=LOYALTY").json()["results"]

    assert [(item["type"], item["amount"], item["reference"]) for item in listed] == [
        ("LOYALTY_REVERSAL", "1.66", str(payment.reference))
    ]
    assert [(item["type"], item["amount"]) for item in earned] == [("LOYALTY", "3.33")]
    # The funding balance's side is the operator's, never in the payer's history.
    assert client.get("/api/v1/transactions/?type=LOYALTY_RETURN").json()["results"] == []
