"""The movements' fast path (transactions/fast_path.py) answers exactly what DRF answers.

Each case builds the same starting state twice, sends the same request once
with the fast path on and once with it off (`MOVEMENTS_FAST_PATH`), and
compares the status, every header and the body (ids, references and times
replaced by the role they play), and the ledger each run left. It also checks
which road each request took: the plain ones must not reach DRF's dispatch
when the fast path is on, the others must; and that each request counted
once against the user's throttle either way (the fast path makes that count
with the balance locks, or on the way out of a movement refused before them).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from unittest import mock

import pytest
from django.test import Client, override_settings
from django_redis import get_redis_connection
from rest_framework_simplejwt.tokens import AccessToken

from loyalty.models import LoyaltyProgram
from tests.factories import UserFactory, WalletFactory, funded_balance
from tests.loyalty import program_in
from transactions.fast_path import fast_movement_view
from transactions.models import Transaction
from transactions.views import TransactionViewSet
from wallet_project import throttling
from wallets import locks
from wallets.services import exchange_rate_create, wallet_set_frozen

pytestmark = pytest.mark.django_db

BASE = "/api/v1/transactions/"
VOLATILE = {"id", "reference", "created_at"}
REQUEST_ID = "fast-path-comparison"


@dataclass
class Setup:
    """The state a case starts from: its token and the ids of its objects, by role."""

    token: str
    roles: dict[str, str] = field(default_factory=dict)
    hold_lock_of: str | None = None  # a role whose balance lock another worker holds during the request


@dataclass
class Case:
    name: str
    endpoint: str
    body: Callable[[Setup], str]
    fast: bool  # whether the fast path serves it (when on)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    method: str = "POST"
    query: str = ""
    authorization: Callable[[Setup], str | None] = lambda setup: f"Bearer {setup.token}"
    prepare: Callable[[Setup], None] = lambda setup: None
    settings: dict[str, Any] = field(default_factory=dict)


def _setup() -> Setup:
    user = UserFactory()
    own = funded_balance(wallet=WalletFactory(owner=user), amount="100.00")
    other = funded_balance(amount="50.00")
    euro = funded_balance(currency="EUR", amount="10.00")
    frozen_wallet = WalletFactory(owner=user)
    frozen = funded_balance(wallet=frozen_wallet, amount="10.00")
    wallet_set_frozen(wallet_id=frozen_wallet.pk, frozen=True)
    roles = {"own": own, "other": other, "euro": euro, "frozen": frozen}
    setup = Setup(token=str(AccessToken.for_user(user)))
    for role, balance in roles.items():
        setup.roles[role] = str(balance.pk)
        setup.roles[f"{role}-wallet"] = str(balance.wallet_id)
    setup.roles["user"] = str(user.pk)
    return setup


def _body(**fields: Any) -> Callable[[Setup], str]:
    """A JSON body whose string values may name a role (`@own`) instead of an id."""

    def build(setup: Setup) -> str:
        return json.dumps(
            {
                key: setup.roles[value[1:]] if isinstance(value, str) and value.startswith("@") else value
                for key, value in fields.items()
            }
        )

    return build


def _raw(text: str) -> Callable[[Setup], str]:
    return lambda setup: text


def _hold(role: str) -> Callable[[Setup], None]:
    def prepare(setup: Setup) -> None:
        setup.hold_lock_of = role

    return prepare


def _spend_the_throttle(setup: Setup) -> None:
    # THROTTLE_USER_RATE is 1/day in that case: one request spends it.
    response = Client().get(BASE, headers={"Authorization": f"Bearer {setup.token}"})
    assert response.status_code == HTTPStatus.OK


def _with_programme(setup: Setup) -> None:
    """A loyalty programme in USD, the same one for both runs of the case (one is active per currency)."""
    if not LoyaltyProgram.objects.filter(currency_id="USD", is_active=True).exists():
        program_in("USD", earn_rate=150, name="Cashback")


TRANSFER = {"from_wallet_balance_id": "@own", "to_wallet_balance_id": "@other", "amount": "2.50"}
STEP_UP = {"MFA_STEP_UP_AMOUNT": Decimal("20"), "MFA_STEP_UP_CURRENCY": "USD"}
ONE_ON_OWN = _body(wallet_balance_id="@own", amount="1")  # the body of a deposit or a withdrawal

CASES = [
    # Served by the fast path.
    Case("deposit", "deposit", _body(wallet_balance_id="@own", amount="5.5", description="Salary"), True),
    Case("withdraw", "withdraw", _body(wallet_balance_id="@own", amount="40"), True),
    Case("payment", "payment", _body(wallet_balance_id="@own", amount="12.99", merchant="Coffee Corner"), True),
    Case(
        "payment earning cashback",
        "payment",
        _body(wallet_balance_id="@own", amount="12.99", merchant="Coffee Corner"),
        True,
        prepare=_with_programme,
    ),
    Case(
        "payment earning cashback, with an Idempotency-Key",
        "payment",
        _body(wallet_balance_id="@own", amount="12.99", merchant="Coffee Corner"),
        False,
        headers={"Idempotency-Key": "pay-1"},
        prepare=_with_programme,
    ),
    Case("transfer", "transfer", _body(**TRANSFER, description="Rent share é ☃"), True),
    Case("transfer across currencies", "transfer", _body(**{**TRANSFER, "to_wallet_balance_id": "@euro"}), True),
    Case(
        "amount as a JSON number",
        "deposit",
        lambda setup: '{"wallet_balance_id": "' + setup.roles["own"] + '", "amount": 1.25}',
        True,
    ),
    Case("insufficient funds", "withdraw", _body(wallet_balance_id="@own", amount="100.01"), True),
    Case("frozen wallet", "deposit", _body(wallet_balance_id="@frozen", amount="1"), True),
    Case("another user's balance", "withdraw", _body(wallet_balance_id="@other", amount="1"), True),
    Case("unknown balance", "transfer", _body(**{**TRANSFER, "to_wallet_balance_id": "@user"}), True),
    Case("same balance", "transfer", _body(**{**TRANSFER, "to_wallet_balance_id": "@own"}), True),
    Case("more decimals than the currency has", "deposit", _body(wallet_balance_id="@own", amount="1.001"), True),
    Case("Accept: application/json", "deposit", ONE_ON_OWN, True, headers={"Accept": "application/json"}),
    Case("throttled", "deposit", ONE_ON_OWN, True, prepare=_spend_the_throttle),
    # Refused by the service before its locks, where the fast path's throttle count is made: counted on the way out.
    Case(
        "throttled, for an unknown balance",
        "withdraw",
        _body(wallet_balance_id="@user", amount="1"),
        True,
        prepare=_spend_the_throttle,
    ),
    Case(
        "throttled, to the same balance",
        "transfer",
        _body(**{**TRANSFER, "to_wallet_balance_id": "@own"}),
        True,
        prepare=_spend_the_throttle,
    ),
    Case(
        "throttled, with too many decimals",
        "deposit",
        _body(wallet_balance_id="@own", amount="1.001"),
        True,
        prepare=_spend_the_throttle,
    ),
    Case("throttled, and its body refused", "deposit", _raw('{"amount": '), False, prepare=_spend_the_throttle),
    Case("lock timeout", "withdraw", ONE_ON_OWN, True, prepare=_hold("own")),
    # Step-up (mfa/step_up.py): refused before the locks for want of a second factor, or not asked.
    Case("beyond the step-up amount", "withdraw", _body(wallet_balance_id="@own", amount="40"), True, settings=STEP_UP),
    Case(
        "a transfer beyond the step-up amount",
        "transfer",
        _body(**{**TRANSFER, "amount": "25"}),
        True,
        settings=STEP_UP,
    ),
    Case(
        "a deposit beyond the step-up amount",
        "deposit",
        _body(wallet_balance_id="@own", amount="40"),
        True,
        settings=STEP_UP,
    ),
    Case(
        "throttled, beyond the step-up amount",
        "payment",
        _body(wallet_balance_id="@own", amount="40", merchant="Shop"),
        True,
        prepare=_spend_the_throttle,
        settings=STEP_UP,
    ),
    # Handed to DRF.
    Case("no credentials", "deposit", ONE_ON_OWN, False, authorization=lambda setup: None),
    Case("a malformed token", "deposit", ONE_ON_OWN, False, authorization=lambda setup: f"Bearer {setup.token[:-2]}"),
    Case("another scheme", "deposit", ONE_ON_OWN, False, authorization=lambda setup: f"Token {setup.token}"),
    Case("an Idempotency-Key", "deposit", ONE_ON_OWN, False, headers={"Idempotency-Key": "k-1"}),
    Case("an empty Idempotency-Key", "deposit", ONE_ON_OWN, False, headers={"Idempotency-Key": ""}),
    Case("a missing field", "transfer", _body(from_wallet_balance_id="@own", amount="1"), False),
    Case("a negative amount", "withdraw", _body(wallet_balance_id="@own", amount="-1"), False),
    Case("Arabic-Indic digits", "deposit", _body(wallet_balance_id="@own", amount="١٠"), False),
    Case("full-width digits", "payment", _body(wallet_balance_id="@own", amount="１０", merchant="Shop"), False),
    Case("digits of two scripts", "transfer", _body(**{**TRANSFER, "amount": "2.٥"}), False),
    Case("a no-break space", "withdraw", _body(wallet_balance_id="@own", amount="1\u00a0"), False),
    Case("JSON whitespace around the amount", "deposit", _body(wallet_balance_id="@own", amount=" 2.5\t"), True),
    Case("an unknown field (ignored)", "deposit", _body(wallet_balance_id="@own", amount="1", colour="red"), True),
    Case("malformed JSON", "deposit", _raw('{"amount": '), False),
    Case("a JSON list", "deposit", _raw("[1, 2]"), False),
    Case("an empty body", "deposit", _raw(""), False),
    Case("NaN", "deposit", _raw('{"wallet_balance_id": "x", "amount": NaN}'), False),
    Case("JSON nested thousands deep", "deposit", _raw("[" * 5000 + "]" * 5000), False),
    Case(
        "an amount nested past the depth limit",
        "deposit",
        lambda setup: '{"wallet_balance_id": "' + setup.roles["own"] + '", "amount": ' + "[" * 40 + "]" * 40 + "}",
        False,
    ),
    Case(
        "a key named twice",
        "withdraw",
        lambda setup: '{"wallet_balance_id": "' + setup.roles["own"] + '", "amount": "1", "amount": "99"}',
        False,
    ),
    Case(
        "a lone surrogate escape",
        "payment",
        lambda setup: '{"wallet_balance_id": "' + setup.roles["own"] + '", "amount": "1", "merchant": "\\ud800"}',
        False,
    ),
    Case("a form body", "deposit", _raw("amount=1"), False, content_type="application/x-www-form-urlencoded"),
    Case("a charset", "deposit", ONE_ON_OWN, False, content_type="application/json; charset=utf-8"),
    Case("Accept: text/html", "deposit", ONE_ON_OWN, False, headers={"Accept": "text/html"}),
    Case("Accept with an indent", "deposit", ONE_ON_OWN, False, headers={"Accept": "application/json; indent=2"}),
    Case("a query string", "deposit", ONE_ON_OWN, False, query="?format=json"),
    Case("GET", "deposit", _raw(""), False, method="GET"),
]


@contextmanager
def _lock_held(setup: Setup) -> Iterator[None]:
    if setup.hold_lock_of is None:
        yield
        return
    backend = locks.get_backend()
    handle = backend.acquire(locks.lock_name(setup.roles[setup.hold_lock_of]), time.monotonic() + 1)
    try:
        yield
    finally:
        backend.release(handle)


def _normalised(text: str, setup: Setup) -> str:
    """The body as sent, byte for byte, with ids, references and times replaced by their role."""
    for role, value in sorted(setup.roles.items(), key=lambda item: -len(item[1])):
        text = text.replace(value, f"<{role}>")
    data = json.loads(text) if text else None
    if isinstance(data, dict):
        for key in sorted(VOLATILE & data.keys()):
            text = text.replace(json.dumps(data[key]), f'"<{key}>"')
    return text


def _user_throttle_count(setup: Setup) -> int:
    """The user's count in the current window of the user throttle (the window of a day: the runs
    of a case do not straddle one)."""
    throttle = throttling.UserThrottle()
    key, _ = throttling._window_key(throttle.scope, setup.roles["user"], throttle.period)
    return int(get_redis_connection("default").get(key) or 0)


def _send(case: Case, setup: Setup, *, fast: bool) -> dict[str, Any]:
    body = case.body(setup)
    headers = {"X-Request-ID": REQUEST_ID, **case.headers}
    authorization = case.authorization(setup)
    if authorization is not None:
        headers["Authorization"] = authorization
    before = Transaction.objects.count()
    counted_before = _user_throttle_count(setup)
    dispatch = mock.patch.object(TransactionViewSet, "dispatch", autospec=True, side_effect=TransactionViewSet.dispatch)
    with override_settings(MOVEMENTS_FAST_PATH=fast, **case.settings), _lock_held(setup), dispatch as spy:
        response = Client().generic(
            case.method, f"{BASE}{case.endpoint}/{case.query}", body, content_type=case.content_type, headers=headers
        )
    header_items = dict(response.headers.items())
    assert int(header_items.pop("Content-Length")) == len(response.content)
    return {
        "status": response.status_code,
        "headers": header_items,
        "body": _normalised(response.content.decode(), setup),
        "entries": Transaction.objects.count() - before,
        "throttle_counts": _user_throttle_count(setup) - counted_before,
        "through_drf": spy.called,
    }


_WAIT_IN_MESSAGE = re.compile(r"available in (\d+) seconds?")


@pytest.fixture
def short_lock_wait(settings: Any) -> Iterator[None]:
    settings.LOCK_WAIT_SECONDS = 0.3
    locks.reset_backend()
    yield
    locks.reset_backend()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_fast_path_answers_what_drf_answers(case: Case, short_lock_wait: None) -> None:
    exchange_rate_create(base="USD", quote="EUR", rate=Decimal("0.9"), created_by=None)
    rate = "1/day" if case.prepare is _spend_the_throttle else "1000/day"
    answers = []
    with override_settings(THROTTLE_USER_RATE=rate):
        for fast in (True, False):
            setup = _setup()
            case.prepare(setup)
            answers.append(_send(case, setup, fast=fast))
    on, off = answers

    assert on["through_drf"] is not case.fast, "the request took the wrong road"
    assert off["through_drf"], "with the fast path off, every request goes through DRF"
    if case.prepare is _spend_the_throttle:
        # The wait is what is left of the window, in the header and in the message: the two runs may
        # straddle a second.
        waits = [int(answer["headers"].pop("Retry-After")) for answer in answers]
        assert abs(waits[0] - waits[1]) <= 1
        in_messages = [_WAIT_IN_MESSAGE.search(answer["body"]) for answer in answers]
        assert all(in_messages), "the throttled message says when to come back"
        assert abs(int(in_messages[0][1]) - int(in_messages[1][1])) <= 1
        for answer in answers:
            answer["body"] = _WAIT_IN_MESSAGE.sub("available in <wait> seconds", answer["body"])
    assert on == {**off, "through_drf": on["through_drf"]}
    if case.fast:
        assert on["throttle_counts"] == 1, "a movement counts once against its user's throttle"
    if case.fast and on["status"] == HTTPStatus.CREATED:
        assert on["entries"] > 0
    if case.prepare is _with_programme:
        assert '"loyalty":{"amount":"0.19","program":{"id":' in on["body"], on["body"]


def test_every_movement_route_has_the_fast_path() -> None:
    from django.urls import resolve

    def served_here(callback: Any) -> bool:
        return callback.__code__.co_filename.endswith("fast_path.py")

    for endpoint in ("deposit", "withdraw", "payment", "transfer"):
        callback = resolve(f"{BASE}{endpoint}/").func
        assert served_here(callback)
        # What the schema generator and the CSRF middleware read, copied from the DRF view.
        assert callback.cls is TransactionViewSet  # type: ignore[attr-defined]
        assert callback.actions == {"post": endpoint}  # type: ignore[attr-defined]
        assert callback.csrf_exempt  # type: ignore[attr-defined]
    assert not served_here(resolve(f"{BASE}00000000-0000-0000-0000-000000000000/refund/").func)
    assert not served_here(resolve(BASE).func)


def test_a_view_configured_otherwise_gets_no_fast_path() -> None:
    class Elsewhere(TransactionViewSet):
        throttle_classes = []
        permission_classes = []

    drf_view = Elsewhere.as_view({"post": "deposit"})
    assert fast_movement_view(drf_view, "deposit") is drf_view
