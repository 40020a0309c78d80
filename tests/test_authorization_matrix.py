"""Every endpoint × {anonymous, owner, another user, staff, finance} answers as the contract says.

The owner owns the wallet, its USD balance, a PAYMENT entry (which earned
cashback under a USD programme) and an active hold, and has an authenticator
app; "another user", "staff" (in no group) and "finance" (the Finance group)
own nothing of it and have none. Staff are not special in the API except for
refunds, which need the refund permission the back office asks for
(Finance): other people's money, holds and cashback included, answers 404 to
them as to anyone, or is simply not listed. Each caller's second factor is
their own: the MFA endpoints act on the caller's, never on anyone else's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus

import pytest

from accounts.tokens import WalletRefreshToken
from conftest import client_for
from events.webhooks.services import webhook_endpoint_create
from tests.admin_support import staff_in
from tests.factories import PASSWORD, UserFactory, WalletFactory, funded_balance
from tests.loyalty import program_in
from tests.second_factor import enrolled, password_step
from transactions.holds.services import hold_create
from transactions.models import Hold, HoldStatus
from transactions.services import payment_create

# A public address written as one, so that registering it needs no DNS.
PUBLIC_HOOK = "https://93.184.216.34/hooks"

OK, CREATED, NO_CONTENT, RESET = HTTPStatus.OK, HTTPStatus.CREATED, HTTPStatus.NO_CONTENT, HTTPStatus.RESET_CONTENT
UNAUTHORIZED, FORBIDDEN, NOT_FOUND = HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND
BAD_REQUEST, CONFLICT = HTTPStatus.BAD_REQUEST, HTTPStatus.CONFLICT
WRONG_CODE = "000000"  # a code no app shows now (the odds that it does are one in a million)


@dataclass
class World:
    owner: object
    other: object
    staff: object
    finance: object
    wallet_id: str
    balance_id: str
    target_balance_id: str
    payment_id: str
    hold_id: str
    endpoint_id: str


@pytest.fixture
def world(db) -> World:
    owner = UserFactory()
    other = UserFactory()
    staff = UserFactory(is_staff=True)
    wallet = WalletFactory(owner=owner)
    balance = funded_balance(amount="500.00", wallet=wallet)
    target = funded_balance(amount="0", wallet=WalletFactory(owner=other))
    program_in("USD")
    payment = payment_create(
        wallet_balance_id=balance.pk, amount=Decimal("20.00"), merchant="Shop", owner=owner, created_by=owner
    )
    hold = hold_create(wallet_balance_id=balance.pk, amount=Decimal("30.00"), owner=owner, created_by=owner)
    finance = staff_in("Finance")
    endpoint = webhook_endpoint_create(user=owner, url=PUBLIC_HOOK, event_types=["*"])
    enrolled(owner)
    return World(
        owner,
        other,
        staff,
        finance,
        str(wallet.pk),
        str(balance.pk),
        str(target.pk),
        str(payment.pk),
        str(hold.pk),
        str(endpoint.pk),
    )


def _requests(w: World, actor) -> dict[str, tuple[str, str, dict]]:
    refresh = str(WalletRefreshToken.for_user(w.owner))
    return {
        "me": ("get", "/api/v1/auth/me/", {}),
        "logout owner's token": ("post", "/api/v1/auth/logout/", {"refresh": refresh}),
        "wallet list": ("get", "/api/v1/wallets/", {}),
        "wallet create": ("post", "/api/v1/wallets/", {"name": f"New {actor}"}),
        "wallet detail": ("get", f"/api/v1/wallets/{w.wallet_id}/", {}),
        "balance open": ("post", f"/api/v1/wallets/{w.wallet_id}/balances/", {"currency": "EUR"}),
        "total balance": ("get", f"/api/v1/wallets/{w.wallet_id}/total-balance/?currency=EUR", {}),
        "balance detail": ("get", f"/api/v1/balances/{w.balance_id}/", {}),
        "currencies": ("get", "/api/v1/currencies/", {}),
        "rates": ("get", "/api/v1/rates/?base=USD", {}),
        "deposit": ("post", "/api/v1/transactions/deposit/", {"wallet_balance_id": w.balance_id, "amount": "1.00"}),
        "withdraw": ("post", "/api/v1/transactions/withdraw/", {"wallet_balance_id": w.balance_id, "amount": "1.00"}),
        "payment": (
            "post",
            "/api/v1/transactions/payment/",
            {"wallet_balance_id": w.balance_id, "amount": "1.00", "merchant": "Shop"},
        ),
        "transfer": (
            "post",
            "/api/v1/transactions/transfer/",
            {"from_wallet_balance_id": w.balance_id, "to_wallet_balance_id": w.target_balance_id, "amount": "1.00"},
        ),
        "batch": (
            "post",
            "/api/v1/transactions/batch/",
            {
                "movements": [
                    {"type": "deposit", "wallet_balance_id": w.balance_id, "amount": "1.00"},
                    {
                        "type": "transfer",
                        "from_wallet_balance_id": w.balance_id,
                        "to_wallet_balance_id": w.target_balance_id,
                        "amount": "1.00",
                    },
                ]
            },
        ),
        "history": ("get", "/api/v1/transactions/", {}),
        "entry detail": ("get", f"/api/v1/transactions/{w.payment_id}/", {}),
        "refund": ("post", f"/api/v1/transactions/{w.payment_id}/refund/", {"amount": "1.00"}),
        "hold list": ("get", "/api/v1/holds/", {}),
        "hold create": ("post", "/api/v1/holds/", {"wallet_balance_id": w.balance_id, "amount": "1.00"}),
        "hold detail": ("get", f"/api/v1/holds/{w.hold_id}/", {}),
        "hold capture": ("post", f"/api/v1/holds/{w.hold_id}/capture/", {"amount": "1.00"}),
        "hold void": ("post", f"/api/v1/holds/{w.hold_id}/void/", {}),
        "webhook endpoint list": ("get", "/api/v1/webhook-endpoints/", {}),
        "webhook endpoint create": ("post", "/api/v1/webhook-endpoints/", {"url": PUBLIC_HOOK, "event_types": ["*"]}),
        "webhook endpoint detail": ("get", f"/api/v1/webhook-endpoints/{w.endpoint_id}/", {}),
        "webhook endpoint change": ("patch", f"/api/v1/webhook-endpoints/{w.endpoint_id}/", {"description": "x"}),
        "webhook endpoint delete": ("delete", f"/api/v1/webhook-endpoints/{w.endpoint_id}/", {}),
        "webhook secret rotation": ("post", f"/api/v1/webhook-endpoints/{w.endpoint_id}/rotate-secret/", {}),
        "webhook deliveries": ("get", f"/api/v1/webhook-endpoints/{w.endpoint_id}/deliveries/", {}),
        "mfa status": ("get", "/api/v1/auth/mfa/", {}),
        "mfa enrol": ("post", "/api/v1/auth/mfa/totp/", {}),
        "mfa confirm": ("post", "/api/v1/auth/mfa/totp/confirm/", {"code": WRONG_CODE}),
        "mfa off": ("delete", "/api/v1/auth/mfa/totp/", {"code": WRONG_CODE}),
        "mfa recovery codes": ("post", "/api/v1/auth/mfa/recovery-codes/", {"code": WRONG_CODE}),
        "loyalty summary": ("get", "/api/v1/loyalty/", {}),
        "loyalty rewards": ("get", "/api/v1/loyalty/rewards/", {}),
    }


# endpoint: (anonymous, owner, another user, staff, finance)
EXPECTED = {
    "me": (UNAUTHORIZED, OK, OK, OK, OK),
    "logout owner's token": (UNAUTHORIZED, RESET, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "wallet list": (UNAUTHORIZED, OK, OK, OK, OK),
    "wallet create": (UNAUTHORIZED, CREATED, CREATED, CREATED, CREATED),
    "wallet detail": (UNAUTHORIZED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "balance open": (UNAUTHORIZED, CREATED, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "total balance": (UNAUTHORIZED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "balance detail": (UNAUTHORIZED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "currencies": (UNAUTHORIZED, OK, OK, OK, OK),
    "rates": (UNAUTHORIZED, OK, OK, OK, OK),
    "deposit": (UNAUTHORIZED, CREATED, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "withdraw": (UNAUTHORIZED, CREATED, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "payment": (UNAUTHORIZED, CREATED, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "transfer": (UNAUTHORIZED, CREATED, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "batch": (UNAUTHORIZED, CREATED, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "history": (UNAUTHORIZED, OK, OK, OK, OK),
    "entry detail": (UNAUTHORIZED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "refund": (UNAUTHORIZED, FORBIDDEN, FORBIDDEN, FORBIDDEN, CREATED),
    "hold list": (UNAUTHORIZED, OK, OK, OK, OK),
    "hold create": (UNAUTHORIZED, CREATED, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "hold detail": (UNAUTHORIZED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "hold capture": (UNAUTHORIZED, CREATED, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "hold void": (UNAUTHORIZED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "webhook endpoint list": (UNAUTHORIZED, OK, OK, OK, OK),
    "webhook endpoint create": (UNAUTHORIZED, CREATED, CREATED, CREATED, CREATED),
    "webhook endpoint detail": (UNAUTHORIZED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "webhook endpoint change": (UNAUTHORIZED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "webhook endpoint delete": (UNAUTHORIZED, NO_CONTENT, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "webhook secret rotation": (UNAUTHORIZED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "webhook deliveries": (UNAUTHORIZED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "loyalty summary": (UNAUTHORIZED, OK, OK, OK, OK),
    "loyalty rewards": (UNAUTHORIZED, OK, OK, OK, OK),
    # The owner's second factor is on; the others' is off.
    "mfa status": (UNAUTHORIZED, OK, OK, OK, OK),
    "mfa enrol": (UNAUTHORIZED, CONFLICT, CREATED, CREATED, CREATED),
    "mfa confirm": (UNAUTHORIZED, CONFLICT, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "mfa off": (UNAUTHORIZED, BAD_REQUEST, CONFLICT, CONFLICT, CONFLICT),
    "mfa recovery codes": (UNAUTHORIZED, BAD_REQUEST, CONFLICT, CONFLICT, CONFLICT),
}
# The error codes of the statuses whose code depends on the endpoint.
CODES = {
    "mfa enrol": {CONFLICT: "mfa_already_enabled"},
    "mfa confirm": {CONFLICT: "mfa_already_enabled"},
    "mfa off": {BAD_REQUEST: "validation_error", CONFLICT: "mfa_not_enabled"},
    "mfa recovery codes": {BAD_REQUEST: "validation_error", CONFLICT: "mfa_not_enabled"},
}
ACTORS = ("anonymous", "owner", "other", "staff", "finance")


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
@pytest.mark.parametrize("actor", ACTORS)
def test_endpoint_answers_each_kind_of_caller_as_the_contract_says(world, endpoint, actor):
    user = {
        "anonymous": None,
        "owner": world.owner,
        "other": world.other,
        "staff": world.staff,
        "finance": world.finance,
    }[actor]
    method, url, body = _requests(world, actor)[endpoint]
    client = client_for(user)

    response = client.get(url) if method == "get" else getattr(client, method)(url, body, format="json")

    expected = EXPECTED[endpoint][ACTORS.index(actor)]
    assert response.status_code == expected, response.content
    if expected >= 400:
        error = response.json()["error"]
        assert (
            error["code"]
            == {
                UNAUTHORIZED: "not_authenticated",
                FORBIDDEN: "permission_denied",
                NOT_FOUND: "not_found",
                **CODES.get(endpoint, {}),
            }[expected]
        )


@pytest.mark.django_db
def test_history_of_another_user_or_staff_never_shows_the_owners_entries(world):
    for user in (world.other, world.staff):
        assert client_for(user).get("/api/v1/transactions/").json()["results"] == []
    assert len(client_for(world.owner).get("/api/v1/transactions/").json()["results"]) == 2


@pytest.mark.django_db
def test_the_owners_cashback_is_never_shown_to_anyone_else(world):
    for user in (world.other, world.staff, world.finance):
        client = client_for(user)
        assert client.get("/api/v1/loyalty/").json() == []
        assert client.get("/api/v1/loyalty/rewards/").json()["results"] == []
    owner = client_for(world.owner)
    assert [item["payment_id"] for item in owner.get("/api/v1/loyalty/rewards/").json()["results"]] == [
        world.payment_id
    ]
    assert owner.get("/api/v1/loyalty/").json()[0]["earned"] == "0.20"


@pytest.mark.django_db
def test_the_owners_hold_is_neither_listed_nor_resolved_for_anyone_else(world):
    for user in (world.other, world.staff, world.finance):
        client = client_for(user)
        assert client.get("/api/v1/holds/").json()["results"] == []
        assert client.post(f"/api/v1/holds/{world.hold_id}/capture/", {}, format="json").status_code == NOT_FOUND
        assert client.post(f"/api/v1/holds/{world.hold_id}/void/", {}, format="json").status_code == NOT_FOUND
    hold = Hold.objects.get(pk=world.hold_id)
    assert (hold.status, hold.captured_amount) == (HoldStatus.ACTIVE, 0)
    assert [item["id"] for item in client_for(world.owner).get("/api/v1/holds/").json()["results"]] == [world.hold_id]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/api/v1/auth/register/", "/api/v1/auth/token/", "/api/v1/auth/token/refresh/", "/api/v1/auth/token/mfa/"],
)
def test_public_auth_endpoints_ignore_a_bad_bearer_token(path):
    user = UserFactory()
    body = {
        "/api/v1/auth/register/": lambda: {"email": "new@example.com", "password": PASSWORD, "name": "New"},
        "/api/v1/auth/token/": lambda: {"email": user.email, "password": PASSWORD},
        "/api/v1/auth/token/refresh/": lambda: {"refresh": str(WalletRefreshToken.for_user(user))},
        "/api/v1/auth/token/mfa/": lambda: {
            "code": enrolled(user).recovery_codes[0],
            "mfa_token": password_step(client_for(None), user)["mfa_token"],
        },
    }[path]()
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = client.post(path, body, format="json")

    assert response.status_code in (OK, CREATED), response.content


# --- step-up: a large movement needs the caller's recent second factor ----------------------------

LARGE = "200.00"
# endpoint: (anonymous, owner, another user, staff, finance); the owner's token carries no second factor.
STEP_UP_EXPECTED = {
    "deposit": (UNAUTHORIZED, CREATED, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "withdraw": (UNAUTHORIZED, FORBIDDEN, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "payment": (UNAUTHORIZED, FORBIDDEN, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "transfer": (UNAUTHORIZED, FORBIDDEN, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    "hold create": (UNAUTHORIZED, FORBIDDEN, NOT_FOUND, NOT_FOUND, NOT_FOUND),
}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", sorted(STEP_UP_EXPECTED))
@pytest.mark.parametrize("actor", ACTORS)
def test_with_step_up_on_a_large_movement_answers_each_kind_of_caller_as_the_contract_says(
    world, endpoint, actor, settings
):
    settings.MFA_STEP_UP_AMOUNT = Decimal("100")
    settings.MFA_STEP_UP_CURRENCY = "USD"
    user = {"anonymous": None, "owner": world.owner, "other": world.other, "staff": world.staff}.get(
        actor, world.finance
    )
    _, url, body = _requests(world, actor)[endpoint]

    response = client_for(user).post(url, {**body, "amount": LARGE}, format="json")

    expected = STEP_UP_EXPECTED[endpoint][ACTORS.index(actor)]
    assert response.status_code == expected, response.content
    if expected == FORBIDDEN:
        error = response.json()["error"]
        # Visibility comes first: only the owner learns that a second factor is missing.
        assert (error["code"], error["details"]["reason"]) == ("mfa_required", "stale")
