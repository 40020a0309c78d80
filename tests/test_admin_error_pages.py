"""The admin answers refusals and unknown pages as admin pages; the API keeps the contract's JSON errors."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse

from conftest import error_code
from tests.factories import funded_balance
from transactions.models import Transaction, TransactionType
from wallet_project import views

pytestmark = pytest.mark.django_db


def _is_admin_page(response) -> bool:
    body = response.content.decode()
    return response["Content-Type"].startswith("text/html") and "Wallet back office" in body and 'id="header"' in body


def test_a_refused_admin_page_is_an_admin_page_and_does_nothing(support):
    payment = funded_balance(amount="100.00").entries.get()
    refund_url = reverse("admin:transactions_transaction_refund", args=[payment.pk])

    response = support.post(refund_url, {"amount": "", "reason": ""})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert _is_admin_page(response)
    assert "<h1>Not allowed</h1>" in response.content.decode()
    assert reverse("admin:index") in response.content.decode()
    assert not Transaction.objects.filter(type=TransactionType.REFUND).exists()


def test_an_unknown_admin_page_is_an_admin_404(support):
    response = support.get("/admin/no/such/page/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert _is_admin_page(response)
    assert "<h1>Page not found</h1>" in response.content.decode()


def test_an_unknown_api_path_keeps_the_contract_404(api):
    response = api.get("/api/v1/no-such-endpoint/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


def test_an_unknown_path_outside_the_admin_answers_json(client):
    response = client.get("/no-such-page/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


def test_a_refusal_outside_the_admin_keeps_the_contract_403():
    request = RequestFactory().get("/api/v1/wallets/")

    response = views.permission_denied(request, PermissionDenied())

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert json.loads(response.content)["error"]["code"] == "permission_denied"


def test_view_site_leads_to_the_api_docs(support):
    body = support.get(reverse("admin:index")).content.decode()

    assert '<a href="/docs/">View site</a>' in body
