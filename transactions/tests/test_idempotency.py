"""Idempotency-Key on the money movements (API.md, "Idempotency")."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.utils import timezone

from conftest import error_code
from tests.factories import WalletFactory, funded_balance
from transactions.models import IdempotencyRecord, Transaction
from wallets import locks
from wallets.models import WalletBalance

DEPOSIT = "/api/v1/transactions/deposit/"
WITHDRAW = "/api/v1/transactions/withdraw/"
PAYMENT = "/api/v1/transactions/payment/"
TRANSFER = "/api/v1/transactions/transfer/"
REPLAYED = "Idempotent-Replayed"


def balance_of(user, *, currency: str = "USD", amount: str = "100.00") -> WalletBalance:
    return funded_balance(wallet=WalletFactory(owner=user), currency=currency, amount=amount)


def amount_of(balance: WalletBalance) -> Decimal:
    balance.refresh_from_db()
    return balance.amount


def keyed(key: str) -> dict[str, str]:
    return {"HTTP_IDEMPOTENCY_KEY": key}


def post_json(client, url: str, text: str, key: str):
    return client.post(url, data=text, content_type="application/json", **keyed(key))


# --- replay ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_retry_with_the_same_key_replays_the_answer_and_moves_no_money(api, user):
    balance = balance_of(user, amount="10.00")
    body = {"wallet_balance_id": str(balance.pk), "amount": "5.00"}

    first = api.post(DEPOSIT, body, **keyed("deposit-1"))
    retry = api.post(DEPOSIT, body, **keyed("deposit-1"))

    assert first.status_code == HTTPStatus.CREATED
    assert REPLAYED not in first.headers
    assert retry.status_code == HTTPStatus.CREATED
    assert retry.headers[REPLAYED] == "true"
    assert retry.json() == first.json()
    assert amount_of(balance) == Decimal("15.00")
    assert Transaction.objects.filter(wallet_balance=balance).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("spelling", ['"10"', "10", '"10.00"', "10.00", '"10.0"', "1E1", '" +10.000 "'])
def test_the_same_amount_spelled_another_way_is_the_same_request(api, user, spelling):
    balance = balance_of(user, amount="100.00")
    first = post_json(api, WITHDRAW, f'{{"wallet_balance_id": "{balance.pk}", "amount": "10.00"}}', "spelled")

    retry = post_json(api, WITHDRAW, f'{{"wallet_balance_id": "{balance.pk}", "amount": {spelling}}}', "spelled")

    assert retry.status_code == HTTPStatus.CREATED, retry.json()
    assert retry.headers[REPLAYED] == "true"
    assert retry.json() == first.json()
    assert amount_of(balance) == Decimal("90.00")


@pytest.mark.django_db
def test_an_amount_that_differs_beyond_28_digits_is_not_taken_for_a_replay(api, user):
    balance = balance_of(user, amount="100.00")
    post_json(api, WITHDRAW, f'{{"wallet_balance_id": "{balance.pk}", "amount": "10"}}', "precise")

    almost_ten = "10.0000000000000000000000000000001"
    retry = post_json(api, WITHDRAW, f'{{"wallet_balance_id": "{balance.pk}", "amount": "{almost_ten}"}}', "precise")

    assert retry.status_code == HTTPStatus.BAD_REQUEST
    assert "amount" in retry.json()["error"]["details"]
    assert amount_of(balance) == Decimal("90.00")


@pytest.mark.django_db
def test_a_replayed_transfer_moves_no_money_on_either_side(api, user, other_user):
    source = balance_of(user, amount="50.00")
    destination = balance_of(other_user, amount="0")
    body = {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "20"}

    first = api.post(TRANSFER, body, **keyed("rent"))
    retry = api.post(TRANSFER, body, **keyed("rent"))

    assert retry.json() == first.json()
    assert retry.headers[REPLAYED] == "true"
    assert amount_of(source) == Decimal("30.00")
    assert amount_of(destination) == Decimal("20.00")
    assert Transaction.objects.filter(reference=first.json()["reference"]).count() == 2


@pytest.mark.django_db
def test_a_replayed_refund_refunds_once(api, user, finance_api):
    balance = balance_of(user, amount="50.00")
    payment = api.post(PAYMENT, {"wallet_balance_id": str(balance.pk), "amount": "20", "merchant": "Shop"}).json()
    url = f"/api/v1/transactions/{payment['id']}/refund/"

    first = finance_api.post(url, {"amount": "5"}, **keyed("refund-1"))
    retry = finance_api.post(url, {"amount": "5.00"}, **keyed("refund-1"))

    assert first.status_code == HTTPStatus.CREATED
    assert retry.status_code == HTTPStatus.CREATED
    assert retry.headers[REPLAYED] == "true"
    assert retry.json() == first.json()
    assert amount_of(balance) == Decimal("35.00")


@pytest.mark.django_db
def test_a_replay_answers_the_stored_body_even_after_the_balance_moved_on(api, user):
    balance = balance_of(user, amount="10.00")
    body = {"wallet_balance_id": str(balance.pk), "amount": "1.00"}
    first = api.post(DEPOSIT, body, **keyed("stable"))
    api.post(DEPOSIT, body)

    retry = api.post(DEPOSIT, body, **keyed("stable"))

    assert retry.json() == first.json()
    assert retry.json()["balance_after"] == "11.00"
    assert amount_of(balance) == Decimal("12.00")


@pytest.mark.django_db
def test_the_record_is_stored_with_the_movement(api, user):
    balance = balance_of(user, amount="10.00")

    response = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "1.00"}, **keyed("stored"))

    record = IdempotencyRecord.objects.get(user=user, key="stored")
    assert record.status_code == HTTPStatus.CREATED
    assert json.loads(record.response_body) == response.json()
    assert record.expires_at > timezone.now() + timedelta(hours=23)


@pytest.mark.django_db
def test_a_replay_is_the_original_body_byte_for_byte(api, user, other_user):
    source = balance_of(user, amount="50.00")
    destination = balance_of(other_user, currency="EUR", amount="0")
    body = {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "5.00"}

    first = api.post("/api/v1/transactions/transfer/", body, **keyed("bytes"))
    again = api.post("/api/v1/transactions/transfer/", body, **keyed("bytes"))

    assert first.status_code == again.status_code == HTTPStatus.CREATED
    assert again[REPLAYED] == "true"
    assert again.content == first.content


# --- reuse -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_same_key_with_another_amount_answers_422_idempotency_key_reused(api, user):
    balance = balance_of(user, amount="10.00")
    api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "5.00"}, **keyed("reused"))

    response = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "6.00"}, **keyed("reused"))

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "idempotency_key_reused"
    assert amount_of(balance) == Decimal("15.00")


@pytest.mark.django_db
def test_the_same_key_with_another_description_answers_422_idempotency_key_reused(api, user):
    balance = balance_of(user, amount="10.00")
    body = {"wallet_balance_id": str(balance.pk), "amount": "5.00"}
    api.post(DEPOSIT, body, **keyed("described"))

    response = api.post(DEPOSIT, {**body, "description": "Other"}, **keyed("described"))

    assert error_code(response) == "idempotency_key_reused"
    assert amount_of(balance) == Decimal("15.00")


@pytest.mark.django_db
def test_the_same_key_on_another_endpoint_answers_422_idempotency_key_reused(api, user):
    balance = balance_of(user, amount="10.00")
    body = {"wallet_balance_id": str(balance.pk), "amount": "5.00"}
    api.post(DEPOSIT, body, **keyed("endpoint"))

    response = api.post(WITHDRAW, body, **keyed("endpoint"))

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "idempotency_key_reused"
    assert amount_of(balance) == Decimal("15.00")


@pytest.mark.django_db
def test_keys_are_scoped_to_the_caller(api, user, other_api, other_user):
    mine = balance_of(user, amount="10.00")
    theirs = balance_of(other_user, amount="10.00")

    first = api.post(DEPOSIT, {"wallet_balance_id": str(mine.pk), "amount": "1.00"}, **keyed("shared-key"))
    second = other_api.post(DEPOSIT, {"wallet_balance_id": str(theirs.pk), "amount": "2.00"}, **keyed("shared-key"))

    assert first.status_code == second.status_code == HTTPStatus.CREATED
    assert REPLAYED not in second.headers
    assert amount_of(mine) == Decimal("11.00")
    assert amount_of(theirs) == Decimal("12.00")


@pytest.mark.django_db
def test_an_expired_key_may_be_used_again(api, user):
    balance = balance_of(user, amount="10.00")
    body = {"wallet_balance_id": str(balance.pk), "amount": "1.00"}
    api.post(DEPOSIT, body, **keyed("old"))
    IdempotencyRecord.objects.filter(user=user, key="old").update(expires_at=timezone.now() - timedelta(seconds=1))

    response = api.post(DEPOSIT, body, **keyed("old"))

    assert response.status_code == HTTPStatus.CREATED
    assert REPLAYED not in response.headers
    assert amount_of(balance) == Decimal("12.00")


# --- what is stored and what is not ----------------------------------------------------------


@pytest.mark.django_db
def test_a_422_refusal_is_stored_and_replayed_even_once_the_funds_are_there(api, user):
    balance = balance_of(user, amount="10.00")
    body = {"wallet_balance_id": str(balance.pk), "amount": "50.00"}
    refused = api.post(WITHDRAW, body, **keyed("too-much"))
    api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "100.00"})

    retry = api.post(WITHDRAW, body, **keyed("too-much"))

    assert refused.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(refused) == "insufficient_funds"
    assert retry.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert retry.headers[REPLAYED] == "true"
    assert retry.json() == refused.json()
    assert amount_of(balance) == Decimal("110.00")
    assert IdempotencyRecord.objects.get(user=user, key="too-much").status_code == HTTPStatus.UNPROCESSABLE_ENTITY


@pytest.mark.django_db
def test_a_400_is_not_stored_so_the_client_may_fix_the_request(api, user):
    balance = balance_of(user, amount="10.00")

    invalid = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "-5"}, **keyed("fixable"))
    fixed = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "5"}, **keyed("fixable"))

    assert invalid.status_code == HTTPStatus.BAD_REQUEST
    assert fixed.status_code == HTTPStatus.CREATED
    assert REPLAYED not in fixed.headers
    assert amount_of(balance) == Decimal("15.00")


@pytest.mark.django_db
def test_a_precision_400_from_the_service_is_not_stored(api, user):
    balance = balance_of(user, currency="JPY", amount="100")

    invalid = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "1.5"}, **keyed("yen"))
    fixed = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "2"}, **keyed("yen"))

    assert invalid.status_code == HTTPStatus.BAD_REQUEST
    assert fixed.status_code == HTTPStatus.CREATED
    assert not IdempotencyRecord.objects.filter(status_code=HTTPStatus.BAD_REQUEST).exists()


@pytest.mark.django_db
def test_a_404_is_not_stored(api, user, other_user):
    mine = balance_of(user, amount="10.00")
    theirs = balance_of(other_user, amount="10.00")

    missing = api.post(DEPOSIT, {"wallet_balance_id": str(theirs.pk), "amount": "5"}, **keyed("wrong-balance"))
    fixed = api.post(DEPOSIT, {"wallet_balance_id": str(mine.pk), "amount": "5"}, **keyed("wrong-balance"))

    assert missing.status_code == HTTPStatus.NOT_FOUND
    assert fixed.status_code == HTTPStatus.CREATED
    assert amount_of(mine) == Decimal("15.00")


@pytest.mark.django_db
def test_a_403_refund_attempt_is_not_stored(api, user):
    balance = balance_of(user, amount="10.00")
    payment = api.post(PAYMENT, {"wallet_balance_id": str(balance.pk), "amount": "1", "merchant": "Shop"}).json()

    response = api.post(f"/api/v1/transactions/{payment['id']}/refund/", {}, **keyed("not-staff"))

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not IdempotencyRecord.objects.filter(key="not-staff").exists()


# --- the key itself --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_key_of_255_characters_is_accepted(api, user):
    balance = balance_of(user, amount="10.00")

    response = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "1"}, **keyed("k" * 255))

    assert response.status_code == HTTPStatus.CREATED


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["k" * 256, ""])
def test_a_key_longer_than_255_characters_or_empty_answers_400(api, user, key):
    balance = balance_of(user, amount="10.00")

    response = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "1"}, **keyed(key))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert "Idempotency-Key" in response.json()["error"]["details"]
    assert amount_of(balance) == Decimal("10.00")
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_a_retry_while_the_first_request_still_runs_answers_409_idempotency_in_progress(api, user):
    balance = balance_of(user, amount="10.00")
    key_digest = hashlib.sha256(b"busy").hexdigest()

    # Hold the key's lock as the first request would while it runs.
    with locks.exclusive(f"wallet:idempotency:{user.pk}:{key_digest}") as held:
        assert held
        response = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "1"}, **keyed("busy"))

    assert response.status_code == HTTPStatus.CONFLICT
    assert error_code(response) == "idempotency_in_progress"
    assert amount_of(balance) == Decimal("10.00")
    assert not IdempotencyRecord.objects.filter(key="busy").exists()


@pytest.mark.django_db
def test_movements_without_a_key_are_carried_out_every_time(api, user):
    balance = balance_of(user, amount="10.00")
    body = {"wallet_balance_id": str(balance.pk), "amount": "1.00"}

    api.post(DEPOSIT, body)
    api.post(DEPOSIT, body)

    assert amount_of(balance) == Decimal("12.00")
    assert not IdempotencyRecord.objects.exists()
