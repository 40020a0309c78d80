"""Every error in the contract's one shape (API.md, "Errors"), from unknown paths to crashes."""

from __future__ import annotations

import io
import json
import logging
import time
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import OperationalError, close_old_connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import WalletFactory, funded_balance
from transactions.models import Transaction
from transactions.services import payment_create
from wallets import locks
from wallets import views as wallet_views
from wallets.models import WalletBalance

DEPOSIT = "/api/v1/transactions/deposit/"


def error_of(response) -> dict:
    """The `error` object, after checking the whole body has exactly the contract's shape."""
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, body
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error


# --- 404 -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/api/v1/nothing-here/", "/api/v2/wallets/", "/api/", "/api/v1/wallets/not-a-uuid/", "/api/v1/wallets"],
)
def test_an_unknown_api_path_answers_404_json(api, path):
    response = api.get(path)

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_of(response)["code"] == "not_found"


@pytest.mark.django_db
def test_an_unknown_api_path_answers_404_json_to_anonymous_callers_and_posts(anon_client):
    response = anon_client.post("/api/v1/nothing-here/", {"a": 1})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_of(response)["code"] == "not_found"


# --- 400 -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("body", ['{"name": ', "not json", '{"name": "x",}', "[1, 2", '{"a": 1} trailing'])
def test_malformed_json_answers_400_validation_error(api, user, body):
    response = api.post("/api/v1/wallets/", data=body, content_type="application/json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert error["details"]["non_field_errors"]


@pytest.mark.django_db
def test_malformed_json_on_a_movement_moves_no_money(api, user):
    balance = funded_balance(wallet=WalletFactory(owner=user))
    rows = Transaction.objects.count()

    response = api.post(
        DEPOSIT, data=f'{{"wallet_balance_id": "{balance.pk}", "amount": 5', content_type="application/json"
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_of(response)["code"] == "validation_error"
    assert Transaction.objects.count() == rows


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null"])
def test_a_json_body_that_is_not_an_object_answers_400(api, user, body):
    response = api.post("/api/v1/wallets/", data=body, content_type="application/json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_of(response)["code"] == "validation_error"


@pytest.mark.django_db
def test_validation_errors_map_each_field_to_a_list_of_messages(api):
    response = api.post(DEPOSIT, {"wallet_balance_id": "nope", "amount": "-1"})

    details = error_of(response)["details"]
    assert set(details) == {"wallet_balance_id", "amount"}
    assert all(isinstance(messages, list) and messages for messages in details.values())
    assert all(isinstance(message, str) for messages in details.values() for message in messages)


def _post_endpoints(user, finance_user) -> list[tuple[str, str]]:
    """Every POST of the API with a body, and who calls it: (path, "user" | "staff" | "anonymous").

    "staff" is a Finance user: refunds ask for the refund permission before they read the body.
    """
    wallet = WalletFactory(owner=user)
    balance = funded_balance(wallet=wallet)
    payment = payment_create(
        wallet_balance_id=balance.pk, amount=Decimal("1"), merchant="Shop", owner=user, created_by=user
    )
    movements = "/api/v1/transactions/"
    return [
        ("/api/v1/auth/register/", "anonymous"),
        ("/api/v1/auth/token/", "anonymous"),
        ("/api/v1/auth/token/refresh/", "anonymous"),
        ("/api/v1/auth/logout/", "user"),
        ("/api/v1/wallets/", "user"),
        (f"/api/v1/wallets/{wallet.pk}/balances/", "user"),
        (f"{movements}deposit/", "user"),
        (f"{movements}withdraw/", "user"),
        (f"{movements}payment/", "user"),
        (f"{movements}transfer/", "user"),
        (f"{movements}{payment.pk}/refund/", "staff"),
    ]


FIELDS = ["email", "password", "name", "refresh", "currency", "initial_amount", "wallet_balance_id", "amount"]
FIELDS += ["from_wallet_balance_id", "to_wallet_balance_id", "merchant", "description"]


def _every_field(value: str) -> bytes:
    return ("{" + ", ".join(f'"{field}": {value}' for field in FIELDS) + "}").encode()


UNREADABLE_BODIES = [
    pytest.param(b"[" * 5000 + b"]" * 5000, id="arrays-nested-thousands-deep"),
    pytest.param(b'{"a": ' * 5000 + b"1" + b"}" * 5000, id="objects-nested-thousands-deep"),
    pytest.param(b'{"amount": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", id="a-field-nested-fifty-thousand-deep"),
    pytest.param(b"[" * 33 + b"]" * 33, id="one-level-past-the-limit"),
    pytest.param(_every_field("[" * 40 + "]" * 40), id="every-field-nested-past-the-limit"),
    pytest.param(b'{"name": "caf\xe9"}', id="latin-1-not-utf-8"),
    pytest.param(b"\xff\xfe{\x00}\x00", id="utf-16-bytes"),
    pytest.param(b"\x00\x01\x02garbage", id="binary-garbage"),
    pytest.param(b"\xef\xbb\xbf{}", id="byte-order-mark"),
    pytest.param(b'{"amount": "1", "amount": "1000"}', id="duplicate-key"),
    pytest.param(b'{"a": {"b": 1, "b": 2}}', id="duplicate-key-in-a-nested-object"),
    pytest.param(b'{"amount": ' + b"1" * 5000 + b"}", id="integer-past-int-digit-limit"),
    pytest.param(b'{"amount": NaN}', id="nan-literal"),
]

READABLE_BUT_INVALID_BODIES = [
    pytest.param(b"[]", id="top-level-list"),
    pytest.param(b"[1, 2, 3]", id="top-level-list-of-numbers"),
    pytest.param(b"42", id="top-level-number"),
    pytest.param(b'"text"', id="top-level-string"),
    pytest.param(b"null", id="top-level-null"),
    pytest.param(b"true", id="top-level-true"),
    pytest.param(_every_field('"\\ud800"'), id="every-field-a-lone-surrogate"),
    pytest.param(_every_field('"a\\u0000b"'), id="every-field-with-a-nul"),
    pytest.param(_every_field("[" * 30 + "]" * 30), id="every-field-nested-within-the-limit"),
    pytest.param(_every_field('{"x": [1, {"y": null}]}'), id="every-field-an-object"),
    pytest.param(_every_field("1e999999999"), id="every-field-a-huge-exponent"),
    pytest.param(_every_field('"' + "x" * 100_000 + '"'), id="every-field-a-long-string"),
]


def _caller(kind: str, user, finance_user) -> APIClient:
    client = APIClient()
    if kind != "anonymous":
        token = RefreshToken.for_user(finance_user if kind == "staff" else user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _ledger() -> tuple:
    return (Transaction.objects.count(), sorted(WalletBalance.objects.values_list("pk", "amount")))


@pytest.mark.django_db
@pytest.mark.parametrize("body", UNREADABLE_BODIES)
def test_an_unreadable_body_answers_400_on_every_endpoint_with_a_warning(user, finance_user, body, caplog):
    for path, kind in _post_endpoints(user, finance_user):
        before = _ledger()
        caplog.clear()

        with caplog.at_level(logging.WARNING):
            response = _caller(kind, user, finance_user).post(path, data=body, content_type="application/json")

        assert response.status_code == HTTPStatus.BAD_REQUEST, (path, response.content[:300])
        error = error_of(response)
        assert error["code"] == "validation_error", path
        assert error["details"]["non_field_errors"], path
        assert _ledger() == before, path
        logged = [(record.name, record.levelno, record.exc_info) for record in caplog.records]
        assert ("wallet.errors", logging.WARNING, None) in logged, (path, logged)
        assert all(level < logging.ERROR for _, level, _ in logged), (path, logged)


@pytest.mark.django_db
@pytest.mark.parametrize("body", READABLE_BUT_INVALID_BODIES)
def test_a_readable_but_invalid_body_is_never_a_server_error(user, finance_user, body, caplog):
    for path, kind in _post_endpoints(user, finance_user):
        before = _ledger()
        caplog.clear()

        with caplog.at_level(logging.WARNING):
            response = _caller(kind, user, finance_user).post(path, data=body, content_type="application/json")

        assert HTTPStatus.BAD_REQUEST <= response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, (path, response)
        assert response.status_code != HTTPStatus.CREATED, path
        error_of(response)
        assert _ledger() == before, path
        assert all(record.levelno < logging.ERROR for record in caplog.records), path


@pytest.mark.django_db
@pytest.mark.parametrize("limit", [None, 1024], ids=["default-limit", "configured-limit"])
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "drf"])
def test_a_body_over_the_upload_limit_answers_413_on_every_endpoint(
    user, finance_user, settings, caplog, limit, fast_path
):
    settings.MOVEMENTS_FAST_PATH = fast_path
    if limit is not None:
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = limit
    allowed = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = b'{"name": "' + b"x" * allowed + b'"}'
    for path, kind in _post_endpoints(user, finance_user):
        before = _ledger()
        caplog.clear()

        with caplog.at_level(logging.WARNING):
            response = _caller(kind, user, finance_user).post(path, data=body, content_type="application/json")

        assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE, (path, response.content[:300])
        error = error_of(response)
        assert error["code"] == "payload_too_large"
        assert error["details"] == {"max_bytes": allowed}
        assert _ledger() == before, path
        logged = [(record.name, record.levelno, record.exc_info) for record in caplog.records]
        assert ("wallet.errors", logging.WARNING, None) in logged, (path, logged)
        assert all(level < logging.ERROR for _, level, _ in logged), (path, logged)


def _served_as_gunicorn_does(path: str, body: bytes, user) -> tuple[int, bytes]:
    """POST `body` through the WSGI application with the environ gunicorn builds (no test client in between)."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(user).access_token}",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    statuses: list[str] = []
    # Like Django's test client: the request must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        answer = WSGIHandler()(environ, lambda status, headers, exc_info=None: statuses.append(status))
        content = b"".join(answer)
        answer.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return int(statuses[0].split()[0]), content


@pytest.mark.django_db
@pytest.mark.parametrize("path", [DEPOSIT, "/api/v1/wallets/"])
def test_a_body_over_the_upload_limit_served_as_gunicorn_does_answers_413(user, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    balance = funded_balance(wallet=WalletFactory(owner=user))
    body = f'{{"wallet_balance_id": "{balance.pk}", "amount": "5", "name": "{"x" * 2048}"}}'.encode()
    before = _ledger()

    status, content = _served_as_gunicorn_does(path, body, user)

    assert status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE, content
    assert json.loads(content)["error"]["code"] == "payload_too_large"
    assert _ledger() == before


# --- 405, 406, 415 ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", DEPOSIT),
        ("put", "/api/v1/wallets/"),
        ("delete", "/api/v1/currencies/"),
        ("patch", "/api/v1/auth/me/"),
        ("get", "/api/v1/auth/logout/"),
    ],
)
def test_a_method_the_endpoint_does_not_serve_answers_405(api, method, path):
    response = getattr(api, method)(path)

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_a_method_not_allowed_on_a_wallet_answers_405(api, user):
    wallet = WalletFactory(owner=user)

    response = api.delete(f"/api/v1/wallets/{wallet.pk}/")

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_a_form_encoded_body_answers_415(api, user):
    balance = funded_balance(wallet=WalletFactory(owner=user))
    rows = Transaction.objects.count()

    response = api.post(
        DEPOSIT,
        data=f"wallet_balance_id={balance.pk}&amount=5",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    assert error_of(response)["code"] == "unsupported_media_type"
    assert Transaction.objects.count() == rows


@pytest.mark.django_db
def test_a_multipart_body_answers_415(anon_client):
    response = anon_client.post(
        "/api/v1/auth/register/", {"email": "a@example.com", "password": "x", "name": "A"}, format="multipart"
    )

    assert response.status_code == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    assert error_of(response)["code"] == "unsupported_media_type"


@pytest.mark.django_db
def test_an_accept_header_the_api_cannot_serve_answers_406(api):
    response = api.get("/api/v1/currencies/", HTTP_ACCEPT="application/xml")

    assert response.status_code == HTTPStatus.NOT_ACCEPTABLE
    assert error_of(response)["code"] == "not_acceptable"


# --- 401 -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/v1/wallets/", "/api/v1/transactions/", "/api/v1/currencies/", "/api/v1/rates/", "/api/v1/auth/me/"]
)
def test_no_credentials_answer_401_not_authenticated(anon_client, path):
    response = anon_client.get(path)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_of(response)["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    ["Bearer garbage", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl", "Bearer", "Bearer a b"],
)
def test_bad_credentials_answer_401_authentication_failed(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/wallets/")

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_of(response)["code"] == "authentication_failed"


@pytest.mark.django_db
def test_a_token_signed_with_another_key_answers_401_authentication_failed(user):
    token = RefreshToken.for_user(user).access_token
    forged = str(token)[:-4] + ("AAAA" if not str(token).endswith("AAAA") else "BBBB")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")

    response = client.get("/api/v1/wallets/")

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_of(response)["code"] == "authentication_failed"


@pytest.mark.django_db
def test_a_token_error_message_is_a_plain_string(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user)}")

    error = error_of(client.get("/api/v1/wallets/"))

    # simplejwt's InvalidToken carries a dict; the handler flattens it into the message.
    assert error["code"] == "authentication_failed"
    assert "{" not in error["message"]


@pytest.mark.django_db
def test_the_401_comes_before_the_405(anon_client):
    response = anon_client.get(DEPOSIT)

    assert response.status_code == HTTPStatus.UNAUTHORIZED


# --- 500 and 503 -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_crash_answers_500_internal_error_without_internals(api, monkeypatch):
    def crash(**kwargs):
        raise RuntimeError("SELECT secret FROM wallets_wallet -- Traceback")

    monkeypatch.setattr(wallet_views.selectors, "wallet_list", crash)

    response = api.get("/api/v1/wallets/")

    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    error = error_of(response)
    assert error["code"] == "internal_error"
    assert "secret" not in response.content.decode()
    assert "Traceback" not in response.content.decode()


@pytest.mark.django_db
def test_a_database_outage_answers_503_service_unavailable(api, monkeypatch):
    def unreachable(**kwargs):
        raise OperationalError("could not connect to server: Connection refused (127.0.0.1:5432)")

    monkeypatch.setattr(wallet_views.selectors, "wallet_list", unreachable)

    response = api.get("/api/v1/wallets/")

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert error_of(response)["code"] == "service_unavailable"
    assert "5432" not in response.content.decode()


@pytest.mark.django_db
def test_with_redis_unreachable_a_movement_answers_503_at_once_and_writes_nothing(api, user, settings):
    balance = funded_balance(wallet=WalletFactory(owner=user), amount="10.00")
    rows = Transaction.objects.count()
    # A port nothing listens on: a real refused connection, not a fake Redis.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    locks.reset_backend()

    started = time.monotonic()
    response = api.post(DEPOSIT, {"wallet_balance_id": str(balance.pk), "amount": "5.00"})
    elapsed = time.monotonic() - started

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert error_of(response)["code"] == "service_unavailable"
    assert elapsed < 1.0
    balance.refresh_from_db()
    assert balance.amount == Decimal("10.00")
    assert Transaction.objects.count() == rows


@pytest.mark.django_db
def test_with_the_lock_redis_unreachable_reads_still_work(api, user, settings):
    wallet = WalletFactory(owner=user)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    locks.reset_backend()

    assert api.get(f"/api/v1/wallets/{wallet.pk}/").status_code == HTTPStatus.OK
    assert api.get("/api/v1/transactions/").status_code == HTTPStatus.OK
