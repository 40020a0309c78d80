"""No cache keeps an answer that carries tokens, balances or ledger entries: the API's answers, on both roads
of a movement, and its errors, are `Cache-Control: no-store`; the admin's pages are never cached either."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from conftest import client_for
from tests.factories import PASSWORD, UserFactory, WalletFactory, funded_balance
from transactions.models import Transaction

pytestmark = pytest.mark.django_db


def _no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_token_and_refresh_answers_are_not_stored():
    user = UserFactory()
    client = APIClient()

    pair = client.post("/api/v1/auth/token/", {"email": user.email, "password": PASSWORD}, format="json")
    rotated = client.post("/api/v1/auth/token/refresh/", {"refresh": pair.json()["refresh"]}, format="json")
    refused = client.post("/api/v1/auth/token/", {"email": user.email, "password": "wrong"}, format="json")

    assert (pair.status_code, rotated.status_code) == (HTTPStatus.OK, HTTPStatus.OK)
    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert all(_no_store(response) for response in (pair, rotated, refused))


def test_answers_with_balances_and_ledger_entries_are_not_stored():
    user = UserFactory()
    balance = funded_balance(wallet=WalletFactory(owner=user), amount="10.00")
    entry = Transaction.objects.get(wallet_balance=balance)
    api = client_for(user)
    wallet = balance.wallet_id

    pages = [
        "/api/v1/wallets/",
        f"/api/v1/wallets/{wallet}/",
        f"/api/v1/wallets/{wallet}/total-balance/?currency=USD",
        f"/api/v1/balances/{balance.pk}/",
        "/api/v1/transactions/",
        f"/api/v1/transactions/{entry.pk}/",
        "/api/v1/auth/me/",
        "/api/v1/no-such-thing/",
    ]

    for page in pages:
        response = api.get(page)
        assert response.status_code in (HTTPStatus.OK, HTTPStatus.NOT_FOUND), page
        assert _no_store(response), page


@pytest.mark.parametrize("fast_path", [True, False])
def test_movements_are_not_stored_on_either_road(fast_path):
    user = UserFactory()
    balance = funded_balance(wallet=WalletFactory(owner=user), amount="10.00")
    api = client_for(user)

    with override_settings(MOVEMENTS_FAST_PATH=fast_path):
        booked = api.post(
            "/api/v1/transactions/withdraw/", {"wallet_balance_id": str(balance.pk), "amount": "1.00"}, format="json"
        )
        refused = api.post(
            "/api/v1/transactions/withdraw/", {"wallet_balance_id": str(balance.pk), "amount": "99.00"}, format="json"
        )

    assert booked.status_code == HTTPStatus.CREATED
    assert refused.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert _no_store(booked) and _no_store(refused)
    balance.refresh_from_db()
    assert str(balance.amount) == "9.0000"


def test_unauthenticated_api_answers_are_not_stored():
    assert _no_store(APIClient().get("/api/v1/wallets/"))


def test_admin_pages_are_never_cached():
    assert _no_store(Client().get(reverse("admin:login")))
