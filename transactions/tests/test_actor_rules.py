"""Who may move money: deactivated actors, the refund permission, and what a sender learns of the destination.

Every service that books or creates, holds included, refuses a deactivated
actor, whether it acts as the owner (an API caller whose access token outlives
the deactivation) or as `created_by` (a staff member), and PostgreSQL refuses
the ledger entry of an inactive actor too.
"""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus

import pytest
from django.db import connection, transaction

from accounts.models import User
from conftest import client_for, error_code
from tests.admin_support import staff_in
from tests.factories import UserFactory, WalletFactory, funded_balance
from transactions.holds.services import hold_create
from transactions.models import Hold, Transaction, TransactionSource
from transactions.services import deposit_create, payment_create, refund_create
from wallet_project.errors import InactiveAccount
from wallets.models import ExchangeRate, Wallet, WalletBalance
from wallets.services import balance_create, exchange_rate_create, wallet_create


def deactivate(user: User) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


def money_state() -> tuple:
    balances = tuple(WalletBalance.objects.order_by("pk").values_list("pk", "amount", "last_sequence"))
    return balances, Transaction.objects.count(), Wallet.objects.count()


@pytest.fixture
def owned(user, other_user):
    """The user's funded USD balance, a payment from it, and another user's balance to send to."""
    source = funded_balance(wallet=WalletFactory(owner=user), amount="100.00")
    destination = funded_balance(wallet=WalletFactory(owner=other_user), amount="0")
    payment = payment_create(
        wallet_balance_id=source.pk, amount=Decimal("20.00"), merchant="Shop", owner=user, created_by=user
    )
    return source, destination, payment


def _requests(source, destination, payment) -> dict[str, tuple[str, dict]]:
    wallet_id = source.wallet_id
    return {
        "wallet create": ("/api/v1/wallets/", {"name": "After deactivation"}),
        "balance open with an amount": (
            f"/api/v1/wallets/{wallet_id}/balances/",
            {"currency": "EUR", "initial_amount": "5.00"},
        ),
        "balance open empty": (f"/api/v1/wallets/{wallet_id}/balances/", {"currency": "GBP"}),
        "deposit": ("/api/v1/transactions/deposit/", {"wallet_balance_id": str(source.pk), "amount": "1.00"}),
        "withdraw": ("/api/v1/transactions/withdraw/", {"wallet_balance_id": str(source.pk), "amount": "1.00"}),
        "payment": (
            "/api/v1/transactions/payment/",
            {"wallet_balance_id": str(source.pk), "amount": "1.00", "merchant": "Shop"},
        ),
        "transfer": (
            "/api/v1/transactions/transfer/",
            {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "1.00"},
        ),
    }


ENDPOINTS = [
    "wallet create",
    "balance open with an amount",
    "balance open empty",
    "deposit",
    "withdraw",
    "payment",
    "transfer",
]


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("idempotency_key", [None, "key-1"], ids=["plain", "with-idempotency-key"])
def test_a_deactivated_users_unexpired_token_moves_and_creates_nothing(user, owned, endpoint, idempotency_key):
    client = client_for(user)  # minted before the deactivation, still unexpired
    deactivate(user)
    before = money_state()
    path, body = _requests(*owned)[endpoint]
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}

    response = client.post(path, body, format="json", **headers)

    assert response.status_code == HTTPStatus.UNAUTHORIZED, response.content
    assert error_code(response) == "authentication_failed"
    assert money_state() == before


def holds_state(balance: WalletBalance) -> tuple:
    balance.refresh_from_db()
    holds = tuple(Hold.objects.order_by("pk").values_list("pk", "status", "captured_amount"))
    return balance.held_amount, holds


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["place", "capture", "void"])
@pytest.mark.parametrize("idempotency_key", [None, "key-1"], ids=["plain", "with-idempotency-key"])
def test_a_deactivated_users_unexpired_token_places_and_resolves_no_hold(user, owned, action, idempotency_key):
    source, _, _ = owned
    hold = hold_create(wallet_balance_id=source.pk, amount=Decimal("10.00"), owner=user, created_by=user)
    client = client_for(user)  # minted before the deactivation, still unexpired
    deactivate(user)
    before = money_state(), holds_state(source)
    path, body = {
        "place": ("/api/v1/holds/", {"wallet_balance_id": str(source.pk), "amount": "1.00"}),
        "capture": (f"/api/v1/holds/{hold.pk}/capture/", {"amount": "1.00"}),
        "void": (f"/api/v1/holds/{hold.pk}/void/", {}),
    }[action]
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}

    response = client.post(path, body, format="json", **headers)

    assert response.status_code == HTTPStatus.UNAUTHORIZED, response.content
    assert error_code(response) == "authentication_failed"
    assert (money_state(), holds_state(source)) == before


@pytest.mark.django_db
@pytest.mark.parametrize("group", [None, "Support"], ids=["staff-in-no-group", "support"])
def test_refunds_through_the_api_need_the_refund_permission_not_just_staff(owned, group):
    _, _, payment = owned
    staff = staff_in(group) if group else UserFactory(is_staff=True)
    before = money_state()

    response = client_for(staff).post(f"/api/v1/transactions/{payment.pk}/refund/", {"amount": "1.00"}, format="json")

    assert response.status_code == HTTPStatus.FORBIDDEN, response.content
    assert error_code(response) == "permission_denied"
    assert money_state() == before


@pytest.mark.django_db
def test_a_finance_user_without_staff_status_cannot_refund(owned):
    _, _, payment = owned
    finance = staff_in("Finance")
    User.objects.filter(pk=finance.pk).update(is_staff=False)
    before = money_state()

    response = client_for(finance).post(f"/api/v1/transactions/{payment.pk}/refund/", {}, format="json")

    assert response.status_code == HTTPStatus.FORBIDDEN, response.content
    assert money_state() == before


@pytest.mark.django_db
def test_a_deactivated_finance_user_refunds_nothing_through_the_api(owned):
    _, _, payment = owned
    finance = staff_in("Finance")
    client = client_for(finance)
    deactivate(finance)
    before = money_state()

    response = client.post(f"/api/v1/transactions/{payment.pk}/refund/", {"amount": "1.00"}, format="json")

    assert response.status_code in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN), response.content
    assert money_state() == before


@pytest.mark.django_db
def test_the_services_refuse_a_deactivated_staff_actor(user, owned):
    source, _, payment = owned
    finance = staff_in("Finance")
    deactivate(finance)
    before = money_state()

    with pytest.raises(InactiveAccount):
        refund_create(payment_id=payment.pk, amount=None, created_by=finance, source=TransactionSource.ADMIN)
    with pytest.raises(InactiveAccount):
        deposit_create(
            wallet_balance_id=source.pk,
            amount=Decimal("5.00"),
            owner=None,
            created_by=finance,
            source=TransactionSource.ADMIN,
        )
    with pytest.raises(InactiveAccount):
        balance_create(
            wallet_id=source.wallet_id, owner=None, currency="KWD", initial_amount=Decimal("1"), created_by=finance
        )
    with pytest.raises(InactiveAccount):
        exchange_rate_create(base="USD", quote="EUR", rate=Decimal("2"), created_by=finance)

    assert money_state() == before
    assert ExchangeRate.objects.filter(base_id="USD", quote_id="EUR", valid_to__isnull=True, rate=2).count() == 0


@pytest.mark.django_db
def test_wallet_create_refuses_a_deactivated_owner(user):
    deactivate(user)

    with pytest.raises(InactiveAccount):
        wallet_create(owner=user, name="Late")

    assert not Wallet.objects.filter(owner=user).exists()


@pytest.mark.django_db(transaction=True)
def test_postgresql_refuses_a_ledger_entry_of_an_inactive_actor(user):
    balance = funded_balance(wallet=WalletFactory(owner=user), amount="10.00")
    entry = Transaction.objects.filter(wallet_balance=balance).get()
    deactivate(user)

    # What a movement racing the deactivation would write: the next link of the chain, by that user.
    with pytest.raises(Exception, match="inactive user"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE wallets_walletbalance SET amount = amount + 1, last_sequence = last_sequence + 1 WHERE id = %s",
            [balance.pk],
        )
        cursor.execute(
            "INSERT INTO transactions_transaction (id, wallet_balance_id, wallet_id, owner_id, currency_id, type,"
            " amount, balance_after, sequence, reference, source, description, merchant, created_by_id)"
            " VALUES (gen_random_uuid(), %s, %s, %s, 'USD', 'DEPOSIT', 1, 11, 2, gen_random_uuid(), 'API', '', '', %s)",
            [balance.pk, balance.wallet_id, user.pk, user.pk],
        )

    assert Transaction.objects.filter(wallet_balance=balance).get() == entry


# --- what a sender learns of someone else's frozen wallet ------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("idempotency_key", [None, "key-1"], ids=["plain", "with-idempotency-key"])
def test_a_transfer_into_someone_elses_frozen_wallet_says_only_that_it_cannot_receive(user, owned, idempotency_key):
    source, destination, _ = owned
    Wallet.objects.filter(pk=destination.wallet_id).update(is_frozen=True)
    before = money_state()
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}

    response = client_for(user).post(
        "/api/v1/transactions/transfer/",
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "1.00"},
        format="json",
        **headers,
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, response.content
    assert error_code(response) == "wallet_frozen"
    text = response.content.decode()
    assert str(destination.wallet_id) not in text
    assert str(destination.pk) not in text
    assert "frozen" not in response.json()["error"]["message"].lower()
    assert response.json()["error"]["details"] == {}
    assert money_state() == before


@pytest.mark.django_db
def test_a_transfer_out_of_the_senders_own_frozen_wallet_names_it(user, owned):
    source, destination, _ = owned
    Wallet.objects.filter(pk=source.wallet_id).update(is_frozen=True)

    response = client_for(user).post(
        "/api/v1/transactions/transfer/",
        {"from_wallet_balance_id": str(source.pk), "to_wallet_balance_id": str(destination.pk), "amount": "1.00"},
        format="json",
    )

    assert error_code(response) == "wallet_frozen"
    assert str(source.wallet_id) in response.json()["error"]["message"]
