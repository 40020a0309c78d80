"""`POST /api/v1/transactions/batch/`: many movements, one posting, all of them or none."""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus

import pytest

from conftest import error_code
from events.models import Event, EventType
from loyalty.models import Reward
from tests.factories import WalletFactory, funded_balance
from tests.invariants import assert_ledger_invariants
from tests.loyalty import program_in
from transactions.models import IdempotencyRecord, Transaction, TransactionType
from wallets.models import WalletBalance

pytestmark = pytest.mark.django_db

URL = "/api/v1/transactions/batch/"


def ledger_state() -> tuple:
    return (
        tuple(Transaction.objects.order_by("pk").values_list("pk", flat=True)),
        tuple(WalletBalance.objects.order_by("pk").values_list("pk", "amount", "last_sequence")),
        Event.objects.count(),
    )


@pytest.fixture
def balances(user, other_user):
    mine = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    savings = funded_balance(amount="0", wallet=WalletFactory(owner=user))
    theirs = funded_balance(amount="0", wallet=WalletFactory(owner=other_user))
    return mine, savings, theirs


def transfer(source, destination, amount, **fields):
    return {
        "type": "transfer",
        "from_wallet_balance_id": str(source.pk),
        "to_wallet_balance_id": str(destination.pk),
        "amount": amount,
        **fields,
    }


def one(kind, balance, amount, **fields):
    return {"type": kind, "wallet_balance_id": str(balance.pk), "amount": amount, **fields}


def test_a_batch_books_each_movement_as_its_own_endpoint_would(api, balances):
    mine, savings, theirs = balances

    response = api.post(
        URL,
        {
            "description": "Month end",
            "movements": [
                transfer(mine, theirs, "30.00", description="Rent"),
                one("payment", mine, "10.00", merchant="Coffee Corner"),
                one("withdraw", mine, "5.00"),
                one("deposit", savings, "1.00"),
                transfer(mine, savings, "50.00"),
            ],
        },
        format="json",
    )

    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["count"] == 5
    assert [entry["type"] for entry in body["entries"]] == [
        "TRANSFER_OUT",
        "PAYMENT",
        "WITHDRAWAL",
        "DEPOSIT",
        "TRANSFER_OUT",
    ]
    assert [entry["balance_after"] for entry in body["entries"]] == ["70.00", "60.00", "55.00", "1.00", "5.00"]
    assert [entry["description"] for entry in body["entries"]] == [
        "Rent",
        "Month end",
        "Month end",
        "Month end",
        "Month end",
    ]
    assert body["entries"][1]["merchant"] == "Coffee Corner"
    assert body["entries"][1]["loyalty"] is None
    assert "loyalty" not in body["entries"][0]
    references = [entry["reference"] for entry in body["entries"]]
    assert len(set(references)) == 5 and body["id"] not in references
    for balance, amount in ((mine, "5.00"), (savings, "51.00"), (theirs, "30.00")):
        balance.refresh_from_db()
        assert balance.amount == Decimal(amount)
    mine.refresh_from_db()
    assert mine.last_sequence == 5  # the opening deposit and one entry per movement of it
    assert_ledger_invariants()
    # The same events as five movements asked one by one: one per movement and owner of its balances.
    moved = Event.objects.filter(type=EventType.MOVEMENT_CREATED, reference__in=references)
    assert sorted((str(event.reference), event.user_id) for event in moved) == sorted(
        [(references[0], mine.wallet.owner_id), (references[0], theirs.wallet.owner_id)]
        + [(reference, mine.wallet.owner_id) for reference in references[1:]]
    )


def test_a_refusal_in_the_middle_leaves_no_trace_and_names_its_movement(api, balances):
    mine, savings, theirs = balances
    before = ledger_state()

    response = api.post(
        URL,
        {
            "movements": [
                one("deposit", mine, "10.00"),
                transfer(mine, theirs, "100.00"),
                one("withdraw", mine, "20.01"),  # 110 − 100 = 10 left: refused
                one("deposit", savings, "1.00"),
            ]
        },
        format="json",
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "insufficient_funds"
    details = response.json()["error"]["details"]
    assert details["index"] == 2
    assert details["available"] == "10.00"
    assert ledger_state() == before


def test_invalid_movements_answer_400_with_each_ones_index(api, balances):
    mine, _, theirs = balances

    response = api.post(
        URL,
        {
            "movements": [
                one("deposit", mine, "1.00"),
                one("deposit", mine, "-1"),
                {"type": "refund", "amount": "1.00"},
                transfer(mine, theirs, "1.00", to_wallet_balance_id="nope"),
                "a string",
            ]
        },
        format="json",
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    invalid = response.json()["error"]["details"]["movements"]
    assert set(invalid) == {"1", "2", "3", "4"}
    assert "amount" in invalid["1"]
    assert "type" in invalid["2"]
    assert "to_wallet_balance_id" in invalid["3"]


def test_an_amount_beyond_its_currencys_precision_is_invalid_by_index(api, balances):
    mine, savings, _ = balances
    before = ledger_state()

    response = api.post(
        URL, {"movements": [one("deposit", savings, "1.00"), one("withdraw", mine, "1.001")]}, format="json"
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert set(response.json()["error"]["details"]["movements"]) == {"1"}
    assert ledger_state() == before


def test_another_users_balance_answers_404_naming_the_movement(api, balances):
    mine, _, theirs = balances

    response = api.post(
        URL, {"movements": [one("deposit", mine, "1.00"), one("withdraw", theirs, "1.00")]}, format="json"
    )

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["error"]["details"] == {"index": 1}


@pytest.mark.parametrize(
    ("count", "status"),
    [
        (0, HTTPStatus.BAD_REQUEST),
        (1, HTTPStatus.CREATED),
        (1_000, HTTPStatus.CREATED),
        (1_001, HTTPStatus.BAD_REQUEST),
    ],
)
def test_a_batch_has_one_to_a_thousand_movements(api, balances, count, status):
    _, savings, _ = balances

    response = api.post(URL, {"movements": [one("deposit", savings, "0.01")] * count}, format="json")

    assert response.status_code == status, response.json()
    savings.refresh_from_db()
    if status == HTTPStatus.CREATED:
        assert response.json()["count"] == count
        assert savings.amount == Decimal(count) / 100
        assert savings.last_sequence == count
        assert_ledger_invariants([savings.pk])
    else:
        assert "movements" in response.json()["error"]["details"]
        assert savings.last_sequence == 0


def test_a_batch_replayed_with_its_idempotency_key_moves_nothing_more(api, balances):
    mine, _, theirs = balances
    body = {"movements": [transfer(mine, theirs, "10"), one("payment", mine, 5, merchant="Shop")]}

    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="payroll-1")
    spelled = {"movements": [transfer(mine, theirs, "10.00"), one("payment", mine, "5.0", merchant="Shop")]}
    replay = api.post(URL, spelled, format="json", HTTP_IDEMPOTENCY_KEY="payroll-1")
    other = api.post(
        URL, {"movements": [transfer(mine, theirs, "11")]}, format="json", HTTP_IDEMPOTENCY_KEY="payroll-1"
    )

    assert first.status_code == replay.status_code == HTTPStatus.CREATED
    assert replay.content == first.content
    assert replay["Idempotent-Replayed"] == "true"
    assert other.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(other) == "idempotency_key_reused"
    mine.refresh_from_db()
    assert mine.amount == Decimal("85.00")
    assert IdempotencyRecord.objects.count() == 1


def test_a_refused_batch_is_refused_again_on_replay(api, balances):
    mine, _, theirs = balances
    body = {"movements": [transfer(mine, theirs, "60"), transfer(mine, theirs, "60")]}

    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="too-much")
    mine_topped_up = api.post(URL, {"movements": [one("deposit", mine, "100")]}, format="json")
    replay = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="too-much")

    assert mine_topped_up.status_code == HTTPStatus.CREATED
    assert first.status_code == replay.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert replay.content == first.content
    assert first.json()["error"]["details"]["index"] == 1


def test_a_batchs_payments_earn_cashback_as_payments_do(api, balances):
    mine, savings, _ = balances
    program_in("USD")

    response = api.post(
        URL,
        {
            "movements": [
                one("payment", mine, "50.00", merchant="A"),
                one("deposit", savings, "1.00"),
                one("payment", mine, "20.00", merchant="B"),
            ]
        },
        format="json",
    )

    assert response.status_code == HTTPStatus.CREATED, response.json()
    payment, _, second = response.json()["entries"]
    assert payment["loyalty"]["status"] == "pending"
    assert second["loyalty"]["status"] == "pending"
    rewards = {reward.payment_id: reward for reward in Reward.objects.all()}
    assert {str(pk) for pk in rewards} == {payment["id"], second["id"]}
    assert rewards[next(pk for pk in rewards if str(pk) == payment["id"])].amount == Decimal(
        payment["loyalty"]["amount"]
    )


def test_a_transfer_between_two_currencies_in_a_batch_converts_at_the_current_rate(api, user, balances):
    mine, _, theirs = balances
    euros = funded_balance(currency="EUR", amount="0", wallet=WalletFactory(owner=user))

    response = api.post(
        URL,
        {"movements": [transfer(mine, euros, "10.00"), transfer(mine, theirs, "1.00"), one("deposit", euros, "1.00")]},
        format="json",
    )

    assert response.status_code == HTTPStatus.CREATED, response.json()
    out = response.json()["entries"][0]
    assert out["exchange_rate"] is not None
    leg_in = Transaction.objects.get(reference=out["reference"], type=TransactionType.TRANSFER_IN)
    euros.refresh_from_db()
    assert euros.amount == leg_in.amount + Decimal("1.00")
    assert_ledger_invariants()


def test_descriptions_and_merchants_of_any_text_are_kept_as_written(api, balances):
    mine, _, theirs = balances
    awkward = ['Rent, "May" \\ {2026}', "NULL", "", "Zoë's café, 東京"]
    movements = [transfer(mine, theirs, "1.00", description=text) for text in awkward]
    movements += [one("payment", mine, "1.00", merchant=text or "x", description=text) for text in awkward]

    response = api.post(URL, {"movements": movements * 2, "description": 'Batch, "quoted"'}, format="json")

    assert response.status_code == HTTPStatus.CREATED, response.json()
    expected = [text or 'Batch, "quoted"' for text in awkward] * 4
    assert [entry["description"] for entry in response.json()["entries"]] == expected
    stored = Transaction.objects.filter(type=TransactionType.PAYMENT).order_by("sequence", "pk")
    assert sorted(entry.merchant for entry in stored) == sorted([text or "x" for text in awkward] * 2)
