"""`GET /api/v1/loyalty/` and `GET /api/v1/loyalty/rewards/`: the caller's own cashback, never anyone else's."""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus

import pytest

from conftest import client_for, error_code
from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.loyalty import book_all, program_in
from transactions.services import payment_create, refund_create

pytestmark = pytest.mark.django_db

SUMMARY = "/api/v1/loyalty/"
REWARDS = "/api/v1/loyalty/rewards/"


def pay(balance, amount: str):
    owner = balance.wallet.owner
    return payment_create(
        wallet_balance_id=balance.pk, amount=Decimal(amount), merchant="Shop", owner=owner, created_by=owner
    )


@pytest.fixture
def history(user, other_user):
    """The user: USD 2.00 booked, 0.50 of it reversed, 0.40 pending, 1.00 unfunded (EUR); JPY 15 booked.
    The other user: a USD reward of their own."""
    usd = program_in("USD", earn_rate=200, funding="100.00")
    program_in("EUR", earn_rate=1000, funding="0.50")
    program_in("JPY", earn_rate=150, funding="10000")
    dollars = funded_balance(amount="1000.00", wallet=WalletFactory(owner=user))
    euros = funded_balance(currency="EUR", amount="100.00", wallet=WalletFactory(owner=user))
    yen = funded_balance(currency="JPY", amount="100000", wallet=WalletFactory(owner=user))
    theirs = funded_balance(amount="100.00", wallet=WalletFactory(owner=other_user))
    booked = pay(dollars, "100.00")
    pay(euros, "10.00")
    pay(yen, "1000")
    pay(theirs, "50.00")
    book_all()
    refund_create(payment_id=booked.pk, amount=Decimal("25.00"), created_by=None)
    pending = pay(dollars, "20.00")
    return usd, booked, pending


def test_the_summary_gives_earned_reversed_net_and_pending_per_currency(history, api):
    response = api.get(SUMMARY)

    assert response.status_code == HTTPStatus.OK
    assert response.json() == [
        {"currency": "EUR", "earned": "0.00", "reversed": "0.00", "net": "0.00", "pending": "0.00"},  # unfunded
        {"currency": "JPY", "earned": "15", "reversed": "0", "net": "15", "pending": "0"},
        {"currency": "USD", "earned": "2.40", "reversed": "0.50", "net": "1.90", "pending": "0.40"},
    ]


def test_the_rewards_list_is_the_callers_own_newest_first(history, api, other_api):
    usd, booked, pending = history

    mine = api.get(REWARDS).json()
    theirs = other_api.get(REWARDS).json()["results"]

    assert [item["payment_id"] for item in mine["results"][:1]] == [str(pending.pk)]
    assert [(item["currency"], item["status"]) for item in mine["results"]] == [
        ("USD", "pending"),
        ("JPY", "booked"),
        ("EUR", "unfunded"),
        ("USD", "booked"),
    ]
    first_usd = mine["results"][-1]
    assert first_usd == {
        **first_usd,
        "payment_id": str(booked.pk),
        "reference": str(booked.reference),
        "amount": "2.00",
        "reversed_amount": "0.50",
        "unreversed_amount": "0.00",
        "net_amount": "1.50",
        "program": {"id": str(usd.pk), "name": "Cashback"},
    }
    assert first_usd["booked_at"] is not None
    assert mine["results"][2]["net_amount"] == "0.00"  # unfunded: nothing earned
    assert len(theirs) == 1 and theirs[0]["payment_id"] not in {item["payment_id"] for item in mine["results"]}


def test_the_rewards_list_pages_with_cursors_and_filters(history, api):
    first = api.get(f"{REWARDS}?page_size=3").json()
    second = api.get(first["next"]).json()

    assert len(first["results"]) == 3 and len(second["results"]) == 1
    assert second["next"] is None and second["previous"] is not None
    seen = [item["id"] for item in first["results"] + second["results"]]
    assert len(set(seen)) == 4
    assert [item["status"] for item in api.get(f"{REWARDS}?currency=USD&status=booked").json()["results"]] == ["booked"]


@pytest.mark.parametrize("query", ["status=paid", "currency=usd", "cursor=nonsense", "page_size=0"])
def test_a_malformed_filter_is_a_validation_error(api, query):
    response = api.get(f"{REWARDS}?{query}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"


def test_someone_with_no_cashback_gets_empty_answers(db):
    client = client_for(UserFactory())

    assert client.get(SUMMARY).json() == []
    assert client.get(REWARDS).json()["results"] == []


def test_both_need_credentials(anon_client):
    for url in (SUMMARY, REWARDS):
        response = anon_client.get(url)
        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert error_code(response) == "not_authenticated"
