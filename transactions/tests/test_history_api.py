"""The history endpoints of API.md: the caller's entries, newest first, cursor-paginated, filtered; one entry."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from http import HTTPStatus

import pytest

from conftest import error_code
from tests.factories import WalletFactory, funded_balance
from transactions.models import Transaction, TransactionType
from wallets.models import WalletBalance

HISTORY = "/api/v1/transactions/"


def balance_of(user, *, currency: str = "USD", amount: str = "100.00", wallet=None) -> WalletBalance:
    return funded_balance(wallet=wallet or WalletFactory(owner=user), currency=currency, amount=amount)


def deposit(api, balance: WalletBalance, amount: str = "1.00") -> dict:
    response = api.post(f"{HISTORY}deposit/", {"wallet_balance_id": str(balance.pk), "amount": amount})
    assert response.status_code == HTTPStatus.CREATED, response.json()
    return response.json()


def ids(response) -> list[str]:
    assert response.status_code == HTTPStatus.OK, response.json()
    return [entry["id"] for entry in response.json()["results"]]


def iso(moment) -> str:
    return moment.astimezone(UTC).isoformat()


# --- listing ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_history_lists_the_callers_entries_newest_first(api, user):
    balance = balance_of(user, amount="10.00")
    first = deposit(api, balance, "1.00")
    second = deposit(api, balance, "2.00")
    seed = Transaction.objects.get(wallet_balance=balance, sequence=1)

    response = api.get(HISTORY)

    assert ids(response) == [second["id"], first["id"], str(seed.pk)]
    body = response.json()
    assert {"next", "previous", "results"} <= set(body)
    assert body["results"][0]["sequence"] == 3
    assert body["results"][0]["balance_after"] == "13.00"


@pytest.mark.django_db
def test_history_shows_no_entries_of_other_users(api, user, other_api, other_user):
    balance_of(other_user)
    mine = balance_of(user)

    response = api.get(HISTORY)

    assert ids(response) == [str(Transaction.objects.get(wallet_balance=mine).pk)]


@pytest.mark.django_db
def test_history_of_a_user_without_entries_is_empty(api):
    response = api.get(HISTORY)

    assert response.status_code == HTTPStatus.OK
    assert response.json()["results"] == []
    assert response.json()["next"] is None


@pytest.mark.django_db
def test_history_shows_the_recipient_their_leg_and_the_sender_only_theirs(api, user, other_api, other_user):
    source = balance_of(user, amount="50.00")
    destination = balance_of(other_user, amount="0")
    sent = api.post(
        f"{HISTORY}transfer/",
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "20.00"},
    ).json()

    sender_types = [entry["type"] for entry in api.get(HISTORY).json()["results"]]
    recipient = other_api.get(HISTORY).json()["results"]

    assert sender_types == ["TRANSFER_OUT", "DEPOSIT"]
    assert [entry["type"] for entry in recipient] == ["TRANSFER_IN"]
    assert recipient[0]["reference"] == sent["reference"]
    assert recipient[0]["related_wallet_balance_id"] == str(source.pk)


@pytest.mark.django_db
def test_history_needs_authentication(anon_client):
    response = anon_client.get(HISTORY)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "not_authenticated"


# --- cursor pagination -----------------------------------------------------------------------


@pytest.mark.django_db
def test_history_pages_through_every_entry_once_with_a_cursor(api, user):
    balance = balance_of(user, amount="1.00")
    for _ in range(6):
        deposit(api, balance)
    expected = ids(api.get(HISTORY))
    assert len(expected) == 7

    seen: list[str] = []
    page = api.get(HISTORY, {"page_size": 3}).json()
    assert page["previous"] is None
    pages = 1
    seen += [entry["id"] for entry in page["results"]]
    while page["next"]:
        assert "cursor=" in page["next"]
        page = api.get(page["next"]).json()
        pages += 1
        seen += [entry["id"] for entry in page["results"]]

    assert seen == expected
    assert pages == 3
    assert page["previous"] is not None


@pytest.mark.django_db
def test_history_previous_link_goes_back_a_page(api, user):
    balance = balance_of(user, amount="1.00")
    for _ in range(4):
        deposit(api, balance)
    first = api.get(HISTORY, {"page_size": 2}).json()

    second = api.get(first["next"]).json()
    back = api.get(second["previous"]).json()

    assert [entry["id"] for entry in back["results"]] == [entry["id"] for entry in first["results"]]


@pytest.mark.django_db
def test_history_cursor_is_stable_when_new_entries_arrive(api, user):
    balance = balance_of(user, amount="1.00")
    for _ in range(3):
        deposit(api, balance)
    everything = ids(api.get(HISTORY))
    first = api.get(HISTORY, {"page_size": 2}).json()

    deposit(api, balance)  # newer than every entry already paged
    second = api.get(first["next"]).json()

    assert [entry["id"] for entry in second["results"]] == everything[2:4]


@pytest.mark.django_db
def test_history_refuses_a_malformed_cursor_with_400(api):
    response = api.get(HISTORY, {"cursor": "not-a-cursor"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "cursor" in response.json()["error"]["details"]


# --- filters ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_history_filters_by_wallet_balance_id(api, user):
    wallet = WalletFactory(owner=user)
    usd = balance_of(user, currency="USD", wallet=wallet)
    eur = balance_of(user, currency="EUR", wallet=wallet)
    deposit(api, usd)
    deposit(api, eur)

    response = api.get(HISTORY, {"wallet_balance_id": str(eur.pk)})

    assert ids(response)
    assert {entry["wallet_balance_id"] for entry in response.json()["results"]} == {str(eur.pk)}
    assert len(ids(response)) == 2


@pytest.mark.django_db
def test_history_filters_by_wallet_id(api, user):
    travel = WalletFactory(owner=user)
    home = WalletFactory(owner=user)
    balance_of(user, currency="USD", wallet=travel)
    balance_of(user, currency="EUR", wallet=travel)
    balance_of(user, currency="USD", wallet=home)

    response = api.get(HISTORY, {"wallet_id": str(travel.pk)})

    assert len(ids(response)) == 2
    assert {entry["wallet_id"] for entry in response.json()["results"]} == {str(travel.pk)}


@pytest.mark.django_db
def test_history_filters_by_type(api, user):
    balance = balance_of(user, amount="100.00")
    deposit(api, balance)
    api.post(f"{HISTORY}withdraw/", {"wallet_balance_id": str(balance.pk), "amount": "5.00"})
    api.post(f"{HISTORY}payment/", {"wallet_balance_id": str(balance.pk), "amount": "5.00", "merchant": "Shop"})

    deposits = api.get(HISTORY, {"type": "DEPOSIT"})
    payments = api.get(HISTORY, {"type": "PAYMENT"})

    assert len(ids(deposits)) == 2
    assert {entry["type"] for entry in deposits.json()["results"]} == {"DEPOSIT"}
    assert [entry["merchant"] for entry in payments.json()["results"]] == ["Shop"]


@pytest.mark.django_db
def test_history_combines_filters(api, user):
    wallet = WalletFactory(owner=user)
    usd = balance_of(user, currency="USD", wallet=wallet)
    balance_of(user, currency="EUR", wallet=wallet)
    api.post(f"{HISTORY}withdraw/", {"wallet_balance_id": str(usd.pk), "amount": "5.00"})

    response = api.get(HISTORY, {"wallet_id": str(wallet.pk), "type": "WITHDRAWAL"})

    assert [entry["type"] for entry in response.json()["results"]] == ["WITHDRAWAL"]


@pytest.mark.django_db
def test_created_after_is_inclusive_and_created_before_exclusive(api, user):
    balance = balance_of(user, amount="1.00")
    first = Transaction.objects.get(wallet_balance=balance)
    second = Transaction.objects.get(pk=deposit(api, balance)["id"])
    third = Transaction.objects.get(pk=deposit(api, balance)["id"])
    assert first.created_at < second.created_at < third.created_at

    after = api.get(HISTORY, {"created_after": iso(second.created_at)})
    before = api.get(HISTORY, {"created_before": iso(second.created_at)})
    window = api.get(HISTORY, {"created_after": iso(second.created_at), "created_before": iso(third.created_at)})

    assert ids(after) == [str(third.pk), str(second.pk)]
    assert ids(before) == [str(first.pk)]
    assert ids(window) == [str(second.pk)]


@pytest.mark.django_db
def test_history_date_filters_take_plain_dates_as_midnight_utc(api, user):
    balance = balance_of(user, amount="1.00")
    entry = Transaction.objects.get(wallet_balance=balance)
    today = entry.created_at.astimezone(UTC).date()
    tomorrow = today + timedelta(days=1)

    assert ids(api.get(HISTORY, {"created_after": today.isoformat()})) == [str(entry.pk)]
    assert ids(api.get(HISTORY, {"created_before": today.isoformat()})) == []
    assert ids(api.get(HISTORY, {"created_before": tomorrow.isoformat()})) == [str(entry.pk)]
    assert ids(api.get(HISTORY, {"created_after": tomorrow.isoformat()})) == []


@pytest.mark.django_db
def test_history_datetime_filters_honour_a_time_zone_offset(api, user):
    balance = balance_of(user, amount="1.00")
    entry = Transaction.objects.get(wallet_balance=balance)
    # The same instant written in UTC+02:00.
    shifted = entry.created_at.astimezone(UTC) + timedelta(hours=2)
    written = shifted.replace(tzinfo=None).isoformat() + "+02:00"

    assert ids(api.get(HISTORY, {"created_after": written})) == [str(entry.pk)]
    assert ids(api.get(HISTORY, {"created_before": written})) == []


@pytest.mark.django_db
def test_history_datetime_without_a_zone_is_read_as_utc(api, user):
    balance = balance_of(user, amount="1.00")
    entry = Transaction.objects.get(wallet_balance=balance)
    naive = entry.created_at.astimezone(UTC).replace(tzinfo=None).isoformat()

    assert ids(api.get(HISTORY, {"created_after": naive})) == [str(entry.pk)]
    assert ids(api.get(HISTORY, {"created_before": naive})) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("wallet_balance_id", "not-a-uuid"),
        ("wallet_id", "123"),
        ("type", "BOGUS"),
        ("type", "deposit"),
        ("created_after", "yesterday"),
        ("created_after", "2026-13-01"),
        ("created_before", "2026-02-30"),
        ("created_before", "2026-01-01T25:00:00"),
    ],
)
def test_history_refuses_a_malformed_filter_with_400(api, name, value):
    response = api.get(HISTORY, {name: value})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert name in response.json()["error"]["details"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["wallet_balance_id", "wallet_id"])
def test_history_with_an_id_that_is_not_the_callers_is_an_empty_list(api, user, other_user, name):
    balance_of(user)
    theirs = balance_of(other_user)
    value = theirs.pk if name == "wallet_balance_id" else theirs.wallet_id

    response = api.get(HISTORY, {name: str(value)})

    assert response.status_code == HTTPStatus.OK
    assert response.json()["results"] == []


@pytest.mark.django_db
def test_history_with_an_unknown_id_is_an_empty_list(api, user):
    balance_of(user)

    response = api.get(HISTORY, {"wallet_balance_id": str(uuid.uuid4())})

    assert response.status_code == HTTPStatus.OK
    assert response.json()["results"] == []


# --- detail ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_answers_one_entry_of_the_caller(api, user):
    balance = balance_of(user, amount="1.00")
    created = deposit(api, balance, "2.50")

    response = api.get(f"{HISTORY}{created['id']}/")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == created


@pytest.mark.django_db
def test_detail_of_another_users_entry_answers_404(api, other_user):
    entry = Transaction.objects.get(wallet_balance=balance_of(other_user))

    response = api.get(f"{HISTORY}{entry.pk}/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.mark.django_db
def test_detail_of_the_recipients_transfer_leg_answers_404_to_the_sender(api, user, other_user):
    source = balance_of(user, amount="50.00")
    destination = balance_of(other_user, amount="0")
    api.post(
        f"{HISTORY}transfer/",
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "20.00"},
    )
    incoming = Transaction.objects.get(wallet_balance=destination, type=TransactionType.TRANSFER_IN)

    response = api.get(f"{HISTORY}{incoming.pk}/")

    assert response.status_code == HTTPStatus.NOT_FOUND


@pytest.mark.django_db
@pytest.mark.parametrize("entry_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_detail_of_an_unknown_entry_answers_404(api, entry_id):
    response = api.get(f"{HISTORY}{entry_id}/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"
