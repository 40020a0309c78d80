"""`GET /api/v1/events/`: the caller's events, oldest first after a cursor, filtered by type."""

from __future__ import annotations

import uuid
from decimal import Decimal
from http import HTTPStatus

import pytest

from conftest import error_code
from events.models import Event
from tests.factories import WalletFactory, funded_balance
from transactions.holds.services import hold_create
from transactions.services import transfer_create

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events/"


@pytest.fixture
def history(user, other_user):
    """The user's balance funded (1 event), a hold (1), a transfer to another user (1 each)."""
    mine = funded_balance(wallet=WalletFactory(owner=user), amount="100.00")
    theirs = funded_balance(wallet=WalletFactory(owner=other_user), amount="0")
    hold_create(wallet_balance_id=mine.pk, amount=Decimal("10.00"), owner=user, created_by=user)
    transfer = transfer_create(
        from_wallet_balance_id=mine.pk,
        to_wallet_balance_id=theirs.pk,
        amount=Decimal("25.00"),
        owner=user,
        created_by=user,
    )
    return mine, theirs, transfer


def test_the_feed_is_oldest_first_with_each_event_as_the_contract_shapes_it(api, history):
    mine, _, transfer = history

    body = api.get(EVENTS).json()

    assert body["next"] is None
    assert [event["type"] for event in body["results"]] == ["movement.created", "hold.created", "movement.created"]
    assert [event["sequence"] for event in body["results"]] == [1, 2, 3]
    assert all(set(event) == {"id", "type", "created_at", "sequence", "data"} for event in body["results"])
    last = body["results"][-1]["data"]
    assert last["reference"] == str(transfer.reference)
    # Only the user's own entry of the transfer: the other side is someone else's.
    assert [(entry["type"], entry["wallet_balance_id"]) for entry in last["entries"]] == [
        ("TRANSFER_OUT", str(mine.pk))
    ]
    assert body["results"][1]["data"]["amount"] == "10.00"


def test_the_other_side_of_a_transfer_sees_its_own_entry(other_api, history):
    _, theirs, _ = history

    (event,) = other_api.get(EVENTS).json()["results"]

    assert event["sequence"] == 1
    assert [(entry["type"], entry["wallet_balance_id"]) for entry in event["data"]["entries"]] == [
        ("TRANSFER_IN", str(theirs.pk))
    ]


def test_pages_follow_next_after_the_last_event(api, history):
    first = api.get(f"{EVENTS}?page_size=2").json()
    assert [event["sequence"] for event in first["results"]] == [1, 2]
    assert f"after={first['results'][-1]['id']}" in first["next"]

    second = api.get(first["next"]).json()
    assert [event["sequence"] for event in second["results"]] == [3]
    assert second["next"] is None
    # A consumer that has seen everything polls with the last id and gets nothing new.
    assert api.get(f"{EVENTS}?after={second['results'][-1]['id']}").json() == {"next": None, "results": []}


def test_types_filter_exactly_or_by_family(api, history):
    def types(query: str) -> list[str]:
        return [event["type"] for event in api.get(f"{EVENTS}?{query}").json()["results"]]

    assert types("type=hold.created") == ["hold.created"]
    assert types("type=movement.*") == ["movement.created", "movement.created"]
    assert types("type=hold.*&type=movement.created") == ["movement.created", "hold.created", "movement.created"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("type=card.*", "type"),
        ("type=rate.changed", "type"),
        ("after=not-a-uuid", "after"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
    ],
)
def test_malformed_queries_answer_400(api, history, query, field):
    response = api.get(f"{EVENTS}?{query}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field in response.json()["error"]["details"]


def test_after_must_be_one_of_the_callers_events(api, other_api, history):
    (theirs,) = other_api.get(EVENTS).json()["results"]
    for after in (theirs["id"], str(uuid.uuid4())):
        response = api.get(f"{EVENTS}?after={after}")
        assert error_code(response) == "validation_error"
        assert "after" in response.json()["error"]["details"]


def test_one_event_and_another_users_is_404(api, other_api, history):
    event = Event.objects.filter(stream_id=history[0].wallet.owner_id).order_by("sequence").last()
    assert api.get(f"{EVENTS}{event.pk}/").json()["sequence"] == event.sequence
    response = other_api.get(f"{EVENTS}{event.pk}/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


def test_anonymous_callers_get_401(anon_client):
    assert anon_client.get(EVENTS).status_code == HTTPStatus.UNAUTHORIZED
