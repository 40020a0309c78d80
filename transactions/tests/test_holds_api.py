"""Holds over HTTP: reserve, capture (partial, multiple), void, expire; every error; idempotency; refunds."""

from __future__ import annotations

import uuid
from decimal import Decimal
from http import HTTPStatus

import pytest

from conftest import error_code
from tests.factories import WalletFactory, funded_balance
from tests.holds import active_remainders, backdate
from transactions.holds.services import holds_expire
from transactions.models import Hold, HoldStatus, Transaction, TransactionType
from wallets.models import WalletBalance
from wallets.services import wallet_set_frozen

HOLDS = "/api/v1/holds/"
HOLD_FIELDS = {
    "id",
    "wallet_balance_id",
    "currency",
    "amount",
    "captured_amount",
    "remaining",
    "status",
    "description",
    "merchant",
    "expires_at",
    "created_at",
    "resolved_at",
    "entries",
}


def capture_url(hold_id) -> str:
    return f"{HOLDS}{hold_id}/capture/"


def void_url(hold_id) -> str:
    return f"{HOLDS}{hold_id}/void/"


@pytest.fixture
def balance(user) -> WalletBalance:
    return funded_balance(wallet=WalletFactory(owner=user), amount="100.00")


def place(api, balance, amount="30.00", **extra):
    headers = {name: value for name, value in extra.items() if name.startswith("HTTP_")}
    body = {name: value for name, value in extra.items() if name not in headers}
    return api.post(HOLDS, {"wallet_balance_id": str(balance.pk), "amount": amount, **body}, format="json", **headers)


def balance_json(api, balance) -> dict:
    wallet = api.get(f"/api/v1/wallets/{balance.wallet_id}/").json()
    (found,) = [item for item in wallet["balances"] if item["id"] == str(balance.pk)]
    return found


def trace(balance) -> tuple:
    balance.refresh_from_db()
    return balance.amount, balance.held_amount, balance.last_sequence, Transaction.objects.count(), Hold.objects.count()


# --- the lifecycle ------------------------------------------------------------------------------


def test_a_hold_reserves_money_without_moving_it(api, balance):
    response = place(api, balance, "30.00", description="Room 412", merchant="Harbour Hotel", expires_in=3600)
    assert response.status_code == HTTPStatus.CREATED, response.json()
    hold = response.json()
    assert set(hold) == HOLD_FIELDS
    assert hold["amount"] == "30.00"
    assert hold["captured_amount"] == "0.00"
    assert hold["remaining"] == "30.00"
    assert hold["status"] == "active"
    assert hold["merchant"] == "Harbour Hotel"
    assert hold["resolved_at"] is None
    assert hold["entries"] == []
    assert balance_json(api, balance) | {"updated_at": None} == {
        "id": str(balance.pk),
        "wallet_id": str(balance.wallet_id),
        "currency": "USD",
        "amount": "100.00",
        "held": "30.00",
        "available": "70.00",
        "updated_at": None,
    }
    assert Transaction.objects.filter(wallet_balance=balance).count() == 1  # the funding deposit only


def test_debits_use_only_what_is_available(api, balance):
    assert place(api, balance, "70.00").status_code == HTTPStatus.CREATED
    refused = api.post(
        "/api/v1/transactions/withdraw/", {"wallet_balance_id": str(balance.pk), "amount": "30.01"}, format="json"
    )
    assert refused.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(refused) == "insufficient_funds"
    assert refused.json()["error"]["details"]["available"] == "30.00"
    allowed = api.post(
        "/api/v1/transactions/payment/",
        {"wallet_balance_id": str(balance.pk), "amount": "30.00", "merchant": "Shop"},
        format="json",
    )
    assert allowed.status_code == HTTPStatus.CREATED
    assert error_code(place(api, balance, "0.01")) == "insufficient_funds"


def test_deposits_and_incoming_transfers_ignore_holds(api, user, balance):
    place(api, balance, "100.00")
    other = funded_balance(wallet=WalletFactory(owner=user), amount="10.00")
    transfer = api.post(
        "/api/v1/transactions/transfer/",
        {"from_wallet_balance_id": str(other.pk), "to_wallet_balance_id": str(balance.pk), "amount": "10.00"},
        format="json",
    )
    assert transfer.status_code == HTTPStatus.CREATED
    assert balance_json(api, balance)["available"] == "10.00"


def test_a_final_capture_of_less_releases_the_rest(api, balance):
    hold = place(api, balance, "30.00", merchant="Hotel").json()
    response = api.post(capture_url(hold["id"]), {"amount": "25.50"}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert set(body) == {"hold", "entry", "loyalty"}
    assert body["loyalty"] is None  # no programme: no cashback
    assert body["entry"]["type"] == "CAPTURE"
    assert body["entry"]["amount"] == "25.50"
    assert body["entry"]["balance_after"] == "74.50"
    assert body["entry"]["merchant"] == "Hotel"
    assert body["hold"]["status"] == "captured"
    assert body["hold"]["captured_amount"] == "25.50"
    assert body["hold"]["remaining"] == "0.00"
    assert body["hold"]["resolved_at"] is not None
    assert body["hold"]["entries"] == [body["entry"]]
    assert balance_json(api, balance)["held"] == "0.00"
    assert balance_json(api, balance)["available"] == "74.50"


def test_multicapture_keeps_the_rest_reserved_and_adds_up(api, balance):
    hold = place(api, balance, "30.00").json()
    first = api.post(capture_url(hold["id"]), {"amount": "10.00", "final": False}, format="json").json()
    assert first["hold"]["status"] == "active"
    assert first["hold"]["remaining"] == "20.00"
    assert balance_json(api, balance)["held"] == "20.00"
    second = api.post(capture_url(hold["id"]), {"amount": "5.00", "final": False}, format="json").json()
    assert second["entry"]["reference"] == first["entry"]["reference"]
    last = api.post(capture_url(hold["id"]), {}, format="json").json()  # what remains, final
    assert last["entry"]["amount"] == "15.00"
    assert last["hold"]["status"] == "captured"
    assert last["hold"]["captured_amount"] == "30.00"
    assert [entry["amount"] for entry in last["hold"]["entries"]] == ["10.00", "5.00", "15.00"]
    assert balance_json(api, balance) | {"updated_at": None} == balance_json(api, balance) | {
        "amount": "70.00",
        "held": "0.00",
        "available": "70.00",
        "updated_at": None,
    }


def test_a_non_final_capture_of_everything_resolves_the_hold(api, balance):
    hold = place(api, balance, "30.00").json()
    body = api.post(capture_url(hold["id"]), {"amount": "30.00", "final": False}, format="json").json()
    assert body["hold"]["status"] == "captured"


def test_void_releases_the_remainder(api, balance):
    hold = place(api, balance, "30.00").json()
    api.post(capture_url(hold["id"]), {"amount": "10.00", "final": False}, format="json")
    response = api.post(void_url(hold["id"]))
    assert response.status_code == HTTPStatus.OK
    assert response.json()["status"] == "voided"
    assert response.json()["captured_amount"] == "10.00"
    assert response.json()["remaining"] == "0.00"
    assert balance_json(api, balance)["held"] == "0.00"
    assert balance_json(api, balance)["amount"] == "90.00"


# --- resolution happens once --------------------------------------------------------------------


@pytest.mark.parametrize("first", ["capture", "void"])
@pytest.mark.parametrize("then", ["capture", "void"])
def test_a_resolved_hold_answers_hold_not_active(api, balance, first, then):
    hold = place(api, balance, "30.00").json()
    url = {"capture": capture_url, "void": void_url}
    assert api.post(url[first](hold["id"]), {}, format="json").status_code in (HTTPStatus.OK, HTTPStatus.CREATED)
    before = trace(balance)
    response = api.post(url[then](hold["id"]), {}, format="json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "hold_not_active"
    assert response.json()["error"]["details"] == {"status": "captured" if first == "capture" else "voided"}
    assert trace(balance) == before


def test_capture_over_the_remainder_answers_capture_exceeds_hold(api, balance):
    hold = place(api, balance, "30.00").json()
    before = trace(balance)
    response = api.post(capture_url(hold["id"]), {"amount": "30.01"}, format="json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "capture_exceeds_hold"
    assert response.json()["error"]["details"] == {"remaining": "30.00", "requested": "30.01"}
    assert trace(balance) == before


# --- expiry -------------------------------------------------------------------------------------


def test_an_expired_hold_stops_reserving_without_the_sweeper(api, balance):
    hold = place(api, balance, "30.00", expires_in=60).json()
    backdate(Hold.objects.get(pk=hold["id"]), 61)
    shown = api.get(f"{HOLDS}{hold['id']}/").json()
    assert shown["status"] == "expired"
    assert shown["remaining"] == "0.00"
    assert shown["resolved_at"] == shown["expires_at"]
    assert balance_json(api, balance)["held"] == "0.00"
    assert balance_json(api, balance)["available"] == "100.00"
    assert Hold.objects.get(pk=hold["id"]).status == HoldStatus.ACTIVE  # nothing has swept it

    capture = api.post(capture_url(hold["id"]), {}, format="json")
    assert error_code(capture) == "hold_expired"
    assert capture.json()["error"]["details"]["status"] == "expired"
    void = api.post(void_url(hold["id"]))
    assert error_code(void) == "hold_not_active"
    assert void.json()["error"]["details"] == {"status": "expired"}

    # The next movement on the balance releases it under the lock, and may use all of it.
    withdraw = api.post(
        "/api/v1/transactions/withdraw/", {"wallet_balance_id": str(balance.pk), "amount": "100.00"}, format="json"
    )
    assert withdraw.status_code == HTTPStatus.CREATED, withdraw.json()
    stored = Hold.objects.get(pk=hold["id"])
    assert stored.status == HoldStatus.EXPIRED
    assert stored.resolved_at == stored.expires_at
    balance.refresh_from_db()
    assert balance.held_amount == 0
    assert balance.hold_due_at is None


def test_only_the_expired_holds_are_released(api, balance):
    old = place(api, balance, "30.00", expires_in=60).json()
    young = place(api, balance, "20.00", expires_in=3600).json()
    backdate(Hold.objects.get(pk=old["id"]), 61)
    assert balance_json(api, balance)["held"] == "20.00"
    refused = api.post(
        "/api/v1/transactions/withdraw/", {"wallet_balance_id": str(balance.pk), "amount": "80.01"}, format="json"
    )
    assert error_code(refused) == "insufficient_funds"  # refused, and rolled back with its release
    assert Hold.objects.get(pk=old["id"]).status == HoldStatus.ACTIVE
    assert (
        api.post(
            "/api/v1/transactions/withdraw/", {"wallet_balance_id": str(balance.pk), "amount": "80.00"}, format="json"
        ).status_code
        == HTTPStatus.CREATED
    )
    balance.refresh_from_db()
    assert balance.held_amount == Decimal("20.00") == active_remainders(balance)
    assert balance.hold_due_at == Hold.objects.get(pk=young["id"]).expires_at


def test_the_sweeper_releases_expired_holds_and_counts_each_once(api, user, balance):
    other = funded_balance(wallet=WalletFactory(owner=user), amount="50.00")
    old = [place(api, balance, "30.00", expires_in=60).json(), place(api, other, "20.00", expires_in=60).json()]
    young = place(api, balance, "10.00", expires_in=3600).json()
    for hold in old:
        backdate(Hold.objects.get(pk=hold["id"]), 61)

    assert holds_expire().holds == 2
    assert holds_expire().holds == 0  # nothing is due any more
    for hold in old:
        stored = Hold.objects.get(pk=hold["id"])
        assert (stored.status, stored.resolved_at) == (HoldStatus.EXPIRED, stored.expires_at)
    assert Hold.objects.get(pk=young["id"]).status == HoldStatus.ACTIVE
    for swept, held in ((balance, Decimal("10.00")), (other, Decimal(0))):
        swept.refresh_from_db()
        assert swept.held_amount == held == active_remainders(swept)
    assert Transaction.objects.filter(wallet_balance__in=[balance, other]).count() == 2  # the fundings only


# --- input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"expires_in": 59}, "expires_in"),
        ({"expires_in": 2_592_001}, "expires_in"),
        ({"expires_in": "600"}, "expires_in"),
        ({"expires_in": 600.5}, "expires_in"),
        ({"expires_in": True}, "expires_in"),
        ({"merchant": "x" * 256}, "merchant"),
        ({"description": "x" * 256}, "description"),
        ({"wallet_balance_id": "not-a-uuid"}, "wallet_balance_id"),
    ],
)
def test_invalid_holds_answer_400(api, balance, body, field):
    response = api.post(HOLDS, {"wallet_balance_id": str(balance.pk), "amount": "1.00", **body}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert error_code(response) == "validation_error"
    assert field in response.json()["error"]["details"]
    assert Hold.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"final": "yes"}, "final"),
        ({"final": 1}, "final"),
    ],
)
def test_invalid_captures_answer_400(api, balance, body, field):
    hold = place(api, balance, "30.00").json()
    response = api.post(capture_url(hold["id"]), body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert field in response.json()["error"]["details"]
    assert Hold.objects.get(pk=hold["id"]).captured_amount == 0


def test_the_expiry_defaults_to_seven_days(api, balance):
    hold = Hold.objects.get(pk=place(api, balance).json()["id"])
    assert 604_790 <= (hold.expires_at - hold.created_at).total_seconds() <= 604_800


# --- who may do what ----------------------------------------------------------------------------


def test_another_users_balance_and_holds_are_404(api, other_api, other_user, balance):
    other_balance = funded_balance(wallet=WalletFactory(owner=other_user))
    assert error_code(place(api, other_balance)) == "not_found"
    hold = place(api, balance).json()
    for response in (
        other_api.get(f"{HOLDS}{hold['id']}/"),
        other_api.post(capture_url(hold["id"]), {}, format="json"),
        other_api.post(void_url(hold["id"])),
    ):
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert error_code(response) == "not_found"
    assert other_api.get(HOLDS).json()["results"] == []
    assert Hold.objects.get(pk=hold["id"]).status == HoldStatus.ACTIVE


def test_unknown_holds_are_404(api):
    assert api.get(f"{HOLDS}{uuid.uuid4()}/").status_code == HTTPStatus.NOT_FOUND
    assert api.post(capture_url(uuid.uuid4()), {}, format="json").status_code == HTTPStatus.NOT_FOUND


def test_frozen_wallets_refuse_holds_and_captures_but_void_still_releases(api, balance):
    hold = place(api, balance, "30.00").json()
    wallet_set_frozen(wallet_id=balance.wallet_id, frozen=True)
    assert error_code(place(api, balance, "1.00")) == "wallet_frozen"
    before = trace(balance)
    assert error_code(api.post(capture_url(hold["id"]), {}, format="json")) == "wallet_frozen"
    assert trace(balance) == before
    assert api.post(void_url(hold["id"])).status_code == HTTPStatus.OK
    balance.refresh_from_db()
    assert balance.held_amount == 0


def test_anonymous_callers_get_401(anon_client):
    assert anon_client.get(HOLDS).status_code == HTTPStatus.UNAUTHORIZED
    assert anon_client.post(HOLDS, {}, format="json").status_code == HTTPStatus.UNAUTHORIZED


# --- listing ------------------------------------------------------------------------------------


def test_the_list_is_newest_first_and_filters_by_status_and_balance(api, user, balance):
    other = funded_balance(wallet=WalletFactory(owner=user))
    first = place(api, balance, "1.00").json()
    second = place(api, other, "2.00").json()
    third = place(api, balance, "3.00", expires_in=60).json()
    api.post(void_url(first["id"]))
    backdate(Hold.objects.get(pk=third["id"]), 61)

    def ids(query: str = "") -> list[str]:
        response = api.get(f"{HOLDS}{query}")
        assert response.status_code == HTTPStatus.OK
        return [hold["id"] for hold in response.json()["results"]]

    # Backdated, the third is now the oldest.
    assert ids() == [second["id"], first["id"], third["id"]]
    assert ids("?status=active") == [second["id"]]
    assert ids("?status=expired") == [third["id"]]
    assert ids("?status=voided") == [first["id"]]
    assert ids(f"?wallet_balance_id={balance.pk}") == [first["id"], third["id"]]
    assert ids("?page_size=1") == [second["id"]]
    assert error_code(api.get(f"{HOLDS}?status=pending")) == "validation_error"
    assert error_code(api.get(f"{HOLDS}?wallet_balance_id=nope")) == "validation_error"


# --- idempotency --------------------------------------------------------------------------------


def test_idempotency_keys_replay_create_capture_and_void(api, balance):
    created = place(api, balance, "30.00", HTTP_IDEMPOTENCY_KEY="h-1")
    again = place(api, balance, "30.00", HTTP_IDEMPOTENCY_KEY="h-1")
    assert again.json() == created.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Hold.objects.count() == 1
    hold_id = created.json()["id"]

    partial = api.post(
        capture_url(hold_id), {"amount": "5.00", "final": False}, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )
    replay = api.post(
        capture_url(hold_id), {"amount": "5.00", "final": False}, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )
    assert replay.status_code == HTTPStatus.CREATED
    assert replay.json() == partial.json()
    assert Transaction.objects.filter(type=TransactionType.CAPTURE).count() == 1

    voided = api.post(void_url(hold_id), HTTP_IDEMPOTENCY_KEY="v-1")
    replayed = api.post(void_url(hold_id), HTTP_IDEMPOTENCY_KEY="v-1")
    assert voided.status_code == replayed.status_code == HTTPStatus.OK
    assert replayed.json() == voided.json()
    assert replayed["Idempotent-Replayed"] == "true"

    reused = api.post(capture_url(hold_id), {}, format="json", HTTP_IDEMPOTENCY_KEY="v-1")
    assert error_code(reused) == "idempotency_key_reused"


def test_a_refused_capture_is_replayed_as_refused(api, balance):
    hold = place(api, balance, "30.00").json()
    first = api.post(capture_url(hold["id"]), {"amount": "31.00"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    second = api.post(capture_url(hold["id"]), {"amount": "31.00"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert error_code(first) == error_code(second) == "capture_exceeds_hold"
    assert second["Idempotent-Replayed"] == "true"


# --- refunds of captures ------------------------------------------------------------------------


def test_staff_refund_a_capture_like_a_payment(api, finance_api, balance):
    hold = place(api, balance, "30.00").json()
    first = api.post(capture_url(hold["id"]), {"amount": "10.00", "final": False}, format="json").json()["entry"]
    second = api.post(capture_url(hold["id"]), {"amount": "20.00"}, format="json").json()["entry"]
    refund = finance_api.post(f"/api/v1/transactions/{first['id']}/refund/", {}, format="json")
    assert refund.status_code == HTTPStatus.CREATED, refund.json()
    assert refund.json()["amount"] == "10.00"
    assert refund.json()["reference"] == hold_reference(hold)
    assert (
        finance_api.post(f"/api/v1/transactions/{second['id']}/refund/", {"amount": "20.00"}, format="json").status_code
        == HTTPStatus.CREATED
    )
    # Everything captured is back; nothing more can be refunded under the hold's reference.
    over = finance_api.post(f"/api/v1/transactions/{first['id']}/refund/", {"amount": "0.01"}, format="json")
    assert error_code(over) == "refund_exceeds_payment"
    balance.refresh_from_db()
    assert balance.amount == Decimal("100.00")


def hold_reference(hold: dict) -> str:
    return str(Hold.objects.get(pk=hold["id"]).reference)
