"""Step-up: a movement worth more than MFA_STEP_UP_AMOUNT needs an access token with a recent second factor.

The threshold is 1000 USD; the owner moves euros, converted at the seeded
EUR→USD rate of 1.1: 909.09 EUR is 999.999 USD (not more than the
threshold), 909.10 EUR is 1000.01 USD (more). Every refusal is checked to
leave no trace; both roads of a movement (the fast path and DRF) are asked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.services import token_pair_issue
from accounts.tokens import WITH_SECOND_FACTOR
from conftest import client_for, error_code
from tests.factories import WalletFactory, funded_balance
from tests.second_factor import bearer_client, enrolled, logged_in_with_code
from transactions.models import Hold, IdempotencyRecord, Transaction
from wallets.models import ExchangeRate, WalletBalance

pytestmark = pytest.mark.django_db

BELOW = "909.09"  # EUR: 999.999 USD
ABOVE = "909.10"  # EUR: 1000.01 USD


@pytest.fixture(autouse=True)
def _step_up(settings: Any) -> None:
    settings.MFA_STEP_UP_AMOUNT = Decimal("1000")
    settings.MFA_STEP_UP_CURRENCY = "USD"
    settings.MFA_STEP_UP_MAX_AGE = 600


@dataclass
class World:
    euros: WalletBalance
    dollars: WalletBalance
    own_dollars: WalletBalance  # the owner's, in another wallet
    theirs: WalletBalance  # another user's, in euros


@pytest.fixture
def world(user, other_user) -> World:
    return World(
        euros=funded_balance(currency="EUR", amount="5000.00", wallet=WalletFactory(owner=user)),
        dollars=funded_balance(amount="5000.00", wallet=WalletFactory(owner=user)),
        own_dollars=funded_balance(amount="0", wallet=WalletFactory(owner=user)),
        theirs=funded_balance(currency="EUR", amount="0", wallet=WalletFactory(owner=other_user)),
    )


def _movements(w: World, amount: str) -> dict[str, tuple[str, dict]]:
    """Each movement that takes money out of the owner's hands, of `amount` EUR."""
    return {
        "withdraw": ("/api/v1/transactions/withdraw/", {"wallet_balance_id": str(w.euros.pk), "amount": amount}),
        "payment": (
            "/api/v1/transactions/payment/",
            {"wallet_balance_id": str(w.euros.pk), "amount": amount, "merchant": "Harbour Hotel"},
        ),
        "transfer to another user": (
            "/api/v1/transactions/transfer/",
            {"from_wallet_balance_id": str(w.euros.pk), "to_wallet_balance_id": str(w.theirs.pk), "amount": amount},
        ),
        "hold": ("/api/v1/holds/", {"wallet_balance_id": str(w.euros.pk), "amount": amount}),
    }


MOVEMENTS = ["withdraw", "payment", "transfer to another user", "hold"]


def _trace() -> tuple[int, int, int, list[tuple[Any, Decimal, Decimal]]]:
    """What a movement leaves behind: entries, holds, stored answers, and every balance's amount and held."""
    balances = list(WalletBalance.objects.order_by("pk").values_list("pk", "amount", "held_amount"))
    return Transaction.objects.count(), Hold.objects.count(), IdempotencyRecord.objects.count(), balances


def _fresh_token(user) -> str:
    return logged_in_with_code(user, enrolled(user))["access"]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "drf"])
@pytest.mark.parametrize("movement", MOVEMENTS)
def test_a_movement_worth_more_than_the_threshold_without_a_second_factor_is_refused_and_leaves_no_trace(
    user, world, movement, fast_path
):
    path, body = _movements(world, ABOVE)[movement]
    before = _trace()

    with override_settings(MOVEMENTS_FAST_PATH=fast_path):
        response = client_for(user).post(path, body, format="json")

    assert response.status_code == HTTPStatus.FORBIDDEN, response.content
    assert error_code(response) == "mfa_required"
    details = response.json()["error"]["details"]
    assert details == {"reason": "not_enrolled", "threshold": "1000", "currency": "USD", "max_age_seconds": 600}
    assert _trace() == before


@pytest.mark.parametrize("movement", MOVEMENTS)
def test_a_movement_worth_the_threshold_or_less_needs_no_second_factor(user, world, movement):
    path, body = _movements(world, BELOW)[movement]

    response = client_for(user).post(path, body, format="json")

    assert response.status_code == HTTPStatus.CREATED, response.content


@pytest.mark.parametrize("movement", MOVEMENTS)
def test_a_fresh_second_factor_lets_a_large_movement_through(user, world, movement):
    path, body = _movements(world, ABOVE)[movement]
    access = _fresh_token(user)

    response = bearer_client(access).post(path, body, format="json")

    assert response.status_code == HTTPStatus.CREATED, response.content


@pytest.mark.parametrize("movement", MOVEMENTS)
def test_an_enrolled_user_with_a_password_only_token_is_told_the_factor_is_stale(user, world, movement):
    enrolled(user)
    path, body = _movements(world, ABOVE)[movement]
    before = _trace()

    response = client_for(user).post(path, body, format="json")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["error"]["details"]["reason"] == "stale"
    assert _trace() == before


def test_a_factor_older_than_the_maximum_age_is_stale_and_one_within_it_is_fresh(user, world):
    enrolled(user)
    path, body = _movements(world, ABOVE)["withdraw"]
    now = int(time.time())
    old = token_pair_issue(user=user, amr=WITH_SECOND_FACTOR, mfa_at=now - 601)["access"]
    recent = token_pair_issue(user=user, amr=WITH_SECOND_FACTOR, mfa_at=now - 590)["access"]

    stale = bearer_client(old).post(path, body, format="json")
    fresh = bearer_client(recent).post(path, body, format="json")

    assert stale.status_code == HTTPStatus.FORBIDDEN
    assert stale.json()["error"]["details"]["reason"] == "stale"
    assert fresh.status_code == HTTPStatus.CREATED


def test_a_refreshed_token_keeps_the_age_of_its_factor(user, world):
    enrolled(user)
    path, body = _movements(world, ABOVE)["withdraw"]
    old = token_pair_issue(user=user, amr=WITH_SECOND_FACTOR, mfa_at=int(time.time()) - 601)

    refreshed = client_for().post("/api/v1/auth/token/refresh/", {"refresh": old["refresh"]}, format="json").json()
    response = bearer_client(refreshed["access"]).post(path, body, format="json")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["error"]["details"]["reason"] == "stale"


def test_the_threshold_itself_needs_no_second_factor_in_its_own_currency(user, world):
    path = "/api/v1/transactions/withdraw/"
    at = client_for(user).post(path, {"wallet_balance_id": str(world.dollars.pk), "amount": "1000.00"}, format="json")
    beyond = client_for(user).post(
        path, {"wallet_balance_id": str(world.dollars.pk), "amount": "1000.01"}, format="json"
    )

    assert at.status_code == HTTPStatus.CREATED
    assert beyond.status_code == HTTPStatus.FORBIDDEN


def test_the_current_rate_decides_what_a_foreign_amount_is_worth(user, world):
    path, body = _movements(world, BELOW)["withdraw"]
    current = ExchangeRate.objects.get(base_id="EUR", quote_id="USD", valid_to__isnull=True)
    ExchangeRate.objects.filter(pk=current.pk).update(valid_to=timezone.now())
    ExchangeRate.objects.create(base_id="EUR", quote_id="USD", rate=Decimal("1.2"), valid_from=timezone.now())

    response = client_for(user).post(path, body, format="json")  # 909.09 EUR is 1090.91 USD now

    assert response.status_code == HTTPStatus.FORBIDDEN


def test_without_a_rate_to_the_step_up_currency_a_foreign_amount_is_asked_for_a_second_factor(user, world):
    ExchangeRate.objects.filter(base_id="EUR", quote_id="USD").update(valid_to=timezone.now())
    path, body = _movements(world, "1.00")["withdraw"]

    response = client_for(user).post(path, body, format="json")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert error_code(response) == "mfa_required"


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "drf"])
def test_deposits_and_transfers_between_ones_own_balances_never_need_a_second_factor(user, world, fast_path):
    client = client_for(user)
    with override_settings(MOVEMENTS_FAST_PATH=fast_path):
        deposit = client.post(
            "/api/v1/transactions/deposit/", {"wallet_balance_id": str(world.euros.pk), "amount": "50000.00"}
        )
        own_transfer = client.post(
            "/api/v1/transactions/transfer/",
            {
                "from_wallet_balance_id": str(world.euros.pk),
                "to_wallet_balance_id": str(world.own_dollars.pk),
                "amount": "40000.00",
            },
            format="json",
        )

    assert deposit.status_code == HTTPStatus.CREATED, deposit.content
    assert own_transfer.status_code == HTTPStatus.CREATED, own_transfer.content


def test_step_up_is_off_by_default(settings, user, world):
    settings.MFA_STEP_UP_AMOUNT = None
    path, body = _movements(world, "4000.00")["withdraw"]

    assert client_for(user).post(path, body, format="json").status_code == HTTPStatus.CREATED


def test_the_input_and_visibility_are_checked_before_the_second_factor(user, other_user, world):
    client = client_for(user)
    too_precise = client.post(
        "/api/v1/transactions/withdraw/", {"wallet_balance_id": str(world.euros.pk), "amount": "5000.001"}
    )
    not_yours = client_for(other_user).post(
        "/api/v1/transactions/withdraw/", {"wallet_balance_id": str(world.euros.pk), "amount": "5000.00"}
    )

    assert too_precise.status_code == HTTPStatus.BAD_REQUEST
    assert not_yours.status_code == HTTPStatus.NOT_FOUND


def test_a_refusal_is_not_stored_under_its_idempotency_key_so_the_retry_with_a_factor_succeeds(user, world):
    path, body = _movements(world, ABOVE)["withdraw"]
    headers = {"HTTP_IDEMPOTENCY_KEY": "big-withdrawal-1"}

    refused = client_for(user).post(path, body, format="json", **headers)
    retried = bearer_client(_fresh_token(user)).post(path, body, format="json", **headers)

    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert retried.status_code == HTTPStatus.CREATED, retried.content
    assert "Idempotent-Replayed" not in retried.headers


def test_staff_moving_money_in_the_back_office_are_not_asked(finance, world):
    from tests.admin_support import post_and_confirm

    response = post_and_confirm(
        finance,
        f"/admin/wallets/walletbalance/{world.euros.pk}/adjust/",
        {"direction": "withdrawal", "amount": "4000.00", "reason": "Court order 17"},
    )

    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    world.euros.refresh_from_db()
    assert world.euros.amount == Decimal("1000.00")
