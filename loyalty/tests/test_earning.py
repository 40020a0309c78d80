"""Earning: a payment's cashback decided in its own transaction, rounded down to the minor unit, capped."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.utils import timezone

from conftest import client_for
from loyalty.earning import earned_by
from loyalty.models import Reward, RewardStatus
from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.loyalty import program_in
from transactions.batches.services import batch_create
from transactions.holds.services import hold_capture, hold_create
from transactions.models import Transaction, TransactionType
from transactions.services import deposit_create, payment_create, transfer_create, withdrawal_create
from wallet_project.errors import InsufficientFunds

pytestmark = pytest.mark.django_db

PAYMENT_URL = "/api/v1/transactions/payment/"


def pay(balance, amount: str):
    return payment_create(
        wallet_balance_id=balance.pk,
        amount=Decimal(amount),
        merchant="Shop",
        owner=balance.wallet.owner,
        created_by=balance.wallet.owner,
    )


@pytest.mark.parametrize(
    ("currency", "rate", "paid", "earned"),
    [
        ("USD", 100, "12.99", "0.12"),  # 0.1299 rounded down
        ("USD", 150, "10.00", "0.15"),
        ("JPY", 150, "1999", "29"),  # 29.985: JPY has no minor unit
        ("JPY", 100, "100", "1"),
        ("KWD", 125, "12.345", "0.154"),  # 0.1543125: three decimals
        ("KWD", 5000, "0.003", "0.001"),  # 0.0015
    ],
)
def test_a_payment_earns_its_share_rounded_down_to_the_minor_unit(user, currency, rate, paid, earned):
    program = program_in(currency, earn_rate=rate, funding="100000" if currency == "JPY" else "1000")
    balance = funded_balance(currency=currency, amount="50000", wallet=WalletFactory(owner=user))

    payment = pay(balance, paid)

    reward = Reward.objects.get(payment=payment)
    assert reward.amount == Decimal(earned)
    assert (reward.status, reward.program_id, reward.reference) == (RewardStatus.PENDING, program.pk, payment.reference)
    assert (reward.wallet_balance_id, reward.owner_id, reward.currency_id) == (balance.pk, user.pk, currency)
    assert earned_by(payment).amount == Decimal(earned)
    # Nothing moves with the payment: the worker books it.
    assert not Transaction.objects.filter(type=TransactionType.LOYALTY).exists()


@pytest.mark.parametrize(
    ("currency", "cap", "paid", "earned"),
    [("USD", "5.00", "1000.00", "5.00"), ("JPY", "300", "50000", "300"), ("KWD", "0.250", "100.000", "0.250")],
)
def test_a_payment_earns_no_more_than_the_cap(user, currency, cap, paid, earned):
    program_in(currency, earn_rate=100, cap=cap, funding="100000")
    balance = funded_balance(currency=currency, amount="100000", wallet=WalletFactory(owner=user))

    assert Reward.objects.get(payment=pay(balance, paid)).amount == Decimal(earned)


@pytest.mark.parametrize(("currency", "paid"), [("USD", "0.99"), ("JPY", "99"), ("KWD", "0.099")])
def test_nothing_is_earned_below_one_minor_unit(user, currency, paid):
    program_in(currency, earn_rate=100, funding="1000")
    balance = funded_balance(currency=currency, amount="1000", wallet=WalletFactory(owner=user))

    payment = pay(balance, paid)

    assert earned_by(payment) is None
    assert not Reward.objects.exists()


def test_an_operators_own_payment_earns_nothing(db):
    program_in("USD")
    operator = UserFactory(is_staff=True)
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=operator))

    assert earned_by(pay(balance, "50.00")) is None
    assert not Reward.objects.exists()


@pytest.mark.parametrize(
    ("active", "starts_in", "ends_in"),
    [
        (False, -1, None),  # switched off
        (True, 1, None),  # not started yet
        (True, -2, -1),  # over
        (True, -2, 0),  # ends now: the end is exclusive
    ],
    ids=["inactive", "not-yet-valid", "expired", "at-its-end"],
)
def test_a_programme_outside_its_validity_earns_nothing(user, active, starts_in, ends_in):
    now = timezone.now()
    program_in(
        "USD",
        active=active,
        valid_from=now + timedelta(hours=starts_in),
        valid_to=None if ends_in is None else now + timedelta(hours=ends_in),
    )
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))

    assert earned_by(pay(balance, "50.00")) is None
    assert not Reward.objects.exists()


def test_a_programme_within_its_window_earns(user):
    now = timezone.now()
    program_in("USD", valid_from=now - timedelta(minutes=1), valid_to=now + timedelta(hours=1))
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))

    assert earned_by(pay(balance, "50.00")).amount == Decimal("0.50")


def test_a_payment_in_another_currency_earns_nothing(user):
    program_in("EUR")
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))

    assert earned_by(pay(balance, "50.00")) is None


def test_only_payments_and_captures_earn(user, other_user):
    program_in("USD")
    balance = funded_balance(amount="500.00", wallet=WalletFactory(owner=user))
    other = funded_balance(amount="0", wallet=WalletFactory(owner=other_user))
    common = {"owner": user, "created_by": user}

    deposit_create(wallet_balance_id=balance.pk, amount=Decimal("100.00"), **common)
    withdrawal_create(wallet_balance_id=balance.pk, amount=Decimal("100.00"), **common)
    transfer_create(
        from_wallet_balance_id=balance.pk, to_wallet_balance_id=other.pk, amount=Decimal("100.00"), **common
    )
    assert not Reward.objects.exists()

    hold = hold_create(wallet_balance_id=balance.pk, amount=Decimal("80.00"), **common)
    captured = hold_capture(hold_id=hold.pk, amount=Decimal("30.00"), final=False, **common)
    again = hold_capture(hold_id=hold.pk, amount=Decimal("20.00"), **common)

    rewards = Reward.objects.order_by("created_at")
    assert [(reward.payment_id, reward.amount) for reward in rewards] == [
        (captured.entry.pk, Decimal("0.30")),
        (again.entry.pk, Decimal("0.20")),
    ]
    assert {reward.reference for reward in rewards} == {hold.reference}


def test_a_refused_payment_leaves_no_reward(user):
    program_in("USD")
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))

    with pytest.raises(InsufficientFunds):
        pay(balance, "50.00")

    assert not Reward.objects.exists()


def test_the_payment_answer_shows_the_pending_cashback(user):
    program = program_in("USD", earn_rate=250, name="Autumn cashback")
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))

    response = client_for(user).post(
        PAYMENT_URL, {"wallet_balance_id": str(balance.pk), "amount": "10.00", "merchant": "Shop"}, format="json"
    )

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["loyalty"] == {
        "amount": "0.25",
        "program": {"id": str(program.pk), "name": "Autumn cashback"},
        "status": "pending",
    }
    assert body["type"] == "PAYMENT" and body["balance_after"] == "90.00"


def test_the_payment_answer_says_null_when_nothing_was_earned(user):
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))

    response = client_for(user).post(
        PAYMENT_URL, {"wallet_balance_id": str(balance.pk), "amount": "10.00", "merchant": "Shop"}, format="json"
    )

    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["loyalty"] is None


def test_a_replayed_payment_answers_the_same_cashback_and_earns_once(user):
    program_in("USD")
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    client = client_for(user)
    body = {"wallet_balance_id": str(balance.pk), "amount": "10.00", "merchant": "Shop"}

    first = client.post(PAYMENT_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="pay-1")
    second = client.post(PAYMENT_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="pay-1")

    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.content == second.content
    assert first.json()["loyalty"]["amount"] == "0.10"
    assert Reward.objects.count() == 1


def test_the_capture_answer_shows_the_pending_cashback(user):
    program_in("USD")
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    client = client_for(user)
    hold = client.post("/api/v1/holds/", {"wallet_balance_id": str(balance.pk), "amount": "40.00"}, format="json")

    response = client.post(f"/api/v1/holds/{hold.json()['id']}/capture/", {"amount": "20.00"}, format="json")

    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert response.json()["loyalty"]["amount"] == "0.20"


def test_changing_a_programme_never_changes_what_was_earned(user):
    program = program_in("USD", earn_rate=100)
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    first = pay(balance, "10.00")

    program.earn_rate = 500
    program.save()
    second = pay(balance, "10.00")

    assert Reward.objects.get(payment=first).amount == Decimal("0.10")
    assert Reward.objects.get(payment=second).amount == Decimal("0.50")


def test_a_batchs_payments_earn_what_each_would_earn_alone(user):
    """`EarnEachRider` decides every payment of a batch in one statement, as `EarnRider` decides one: the share
    rounded down per currency, the cap, nothing below one minor unit, nothing without a programme, nothing for an
    operator's payment."""
    program_in("USD", earn_rate=150, cap="1.00")
    program_in("KWD", earn_rate=125)
    dollars = funded_balance(amount="5000", wallet=WalletFactory(owner=user))
    dinars = funded_balance(currency="KWD", amount="500", wallet=WalletFactory(owner=user))
    euros = funded_balance(currency="EUR", amount="500", wallet=WalletFactory(owner=user))
    operator = UserFactory(is_staff=True)
    operators = funded_balance(amount="500", wallet=WalletFactory(owner=operator))
    paid = [
        (dollars, "10.00", "0.15"),
        (dollars, "1000.00", "1.00"),  # capped
        (dollars, "0.50", None),  # 0.0075: below one cent
        (dinars, "12.345", "0.154"),
        (euros, "100.00", None),  # no programme in EUR
        (operators, "100.00", None),  # an operator's own payment
        (dollars, "12.99", "0.19"),
    ]

    batch = batch_create(
        movements=[
            {"type": "payment", "wallet_balance_id": balance.pk, "amount": Decimal(amount), "merchant": "Shop"}
            for balance, amount, _ in paid
        ],
        owner=None,
        created_by=None,
    )

    for entry, (_, _, earned) in zip(batch.entries, paid, strict=True):
        assert (None if earned_by(entry) is None else earned_by(entry).amount) == (
            None if earned is None else Decimal(earned)
        )
        reward = Reward.objects.filter(payment=entry).first()
        assert (None if reward is None else reward.amount) == (None if earned is None else Decimal(earned))
        if reward is not None:
            assert (reward.reference, reward.wallet_balance_id, reward.status) == (
                entry.reference,
                entry.wallet_balance_id,
                RewardStatus.PENDING,
            )
    assert Reward.objects.count() == 4
