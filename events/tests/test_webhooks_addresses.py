"""Webhooks never call the service's own network: https only, public addresses only, checked when an endpoint
is registered and again, after resolving the name, at every delivery (which connects to the address it
checked). `WEBHOOKS_ALLOW_INSECURE` lifts both rules, and is refused outside DEBUG."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
from http import HTTPStatus

import pytest

from conftest import client_for, error_code
from events.models import DeliveryStatus, WebhookEndpoint
from events.tests.webhook_support import (
    Receiver,
    balance_of,
    certificates,
    deliver,
    deliveries_of,
    deposit,
    endpoint_for,
)
from events.webhooks import addresses, transport
from tests.live import BASE_DIR, service_environment

PUBLIC = "93.184.216.34"
ENDPOINTS = "/api/v1/webhook-endpoints/"


def _register(user, url):
    return client_for(user).post(ENDPOINTS, {"url": url, "event_types": ["*"]}, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/", "https://"),
        ("https://127.0.0.1/hooks", "loopback"),
        ("https://127.1.2.3:8443/hooks", "loopback"),
        ("https://10.0.0.5/hooks", "private"),
        ("https://192.168.1.1/hooks", "private"),
        ("https://172.16.0.1/hooks", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]/hooks", "loopback"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "private"),
        ("https://[::ffff:127.0.0.1]/hooks", "127.0.0.1"),
        ("https://[::ffff:169.254.169.254]/", "169.254.169.254"),
        ("https://0.0.0.0/hooks", "unspecified"),
        ("https://100.64.0.1/hooks", "not a public address"),
        ("https://224.0.0.1/hooks", "multicast"),
        ("https://localhost/hooks", "loopback"),
        ("https://2130706433/hooks", "valid URL"),  # 127.0.0.1 written as one number
        ("https://93.184.216.34:0/hooks", "port"),
        ("https://93.184.216.34:65536/hooks", "port"),
        ("https://user:secret@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com/#fragment", "fragment"),
        ("https://no-such-host.invalid/hooks", "does not resolve"),
        ("not a url", "valid URL"),
        ("ftp://hooks.example.com/", "valid URL"),
    ],
)
def test_registration_refuses_urls_a_webhook_may_not_call(owner, url, why):
    response = _register(owner, url)

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert error_code(response) == "validation_error"
    assert why in response.json()["error"]["details"]["url"][0]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_registration_accepts_https_to_a_public_address(owner, resolver):
    resolver["hooks.example.com"] = [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"]

    for url in (f"https://{PUBLIC}/hooks", "https://hooks.example.com/wallet?source=wallet"):
        assert _register(owner, url).status_code == HTTPStatus.CREATED

    assert WebhookEndpoint.objects.count() == 2


@pytest.mark.django_db
def test_a_name_with_any_private_address_among_its_addresses_is_refused(owner, resolver):
    resolver["mixed.example.com"] = [PUBLIC, "10.1.2.3"]

    response = _register(owner, "https://mixed.example.com/hooks")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "10.1.2.3 is a private address" in response.json()["error"]["details"]["url"][0]


@pytest.mark.django_db
def test_changing_the_url_is_checked_as_registering_is(owner):
    endpoint = endpoint_for(owner, f"https://{PUBLIC}/hooks")

    response = client_for(owner).patch(f"{ENDPOINTS}{endpoint.pk}/", {"url": "https://10.0.0.1/"}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "private" in response.json()["error"]["details"]["url"][0]
    endpoint.refresh_from_db()
    assert endpoint.url == f"https://{PUBLIC}/hooks"


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, whose client is 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "::127.0.0.1",  # IPv4-compatible
        "fe80::1%eth0",
        "198.18.0.1",
        "192.0.2.1",
        "255.255.255.255",
    ],
)
def test_addresses_that_carry_or_are_non_public_ones_are_refused(address):
    assert addresses.refusal(address) is not None


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2001:4860:4860::8888"])
def test_public_addresses_are_allowed(address):
    assert addresses.refusal(address) is None


def test_a_delivery_connects_to_the_address_it_checked_and_names_the_host_for_tls(resolver):
    resolver["hooks.example.com"] = [PUBLIC]

    target = addresses.delivery_target("https://hooks.example.com:8443/wallet?x=1")

    assert str(target.url) == f"https://{PUBLIC}:8443/wallet?x=1"
    assert target.host_header == "hooks.example.com:8443"
    assert target.sni_hostname == "hooks.example.com"


# --- at delivery --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_name_that_now_resolves_inside_is_refused_at_delivery(owner, receiver, resolver):
    resolver["hooks.example.com"] = [PUBLIC]
    endpoint = endpoint_for(owner, f"https://hooks.example.com:{receiver.port}/hooks")
    resolver["hooks.example.com"] = ["127.0.0.1"]  # pointed inside after registration
    deposit(balance_of(owner))

    deliver()

    assert receiver.received == []
    (pending,) = deliveries_of(endpoint)
    (attempt,) = pending.attempts.all()
    assert pending.status == DeliveryStatus.PENDING
    assert attempt.status_code is None
    assert attempt.error.startswith("Refused: The host hooks.example.com may not be called: 127.0.0.1 is a loopback")


@pytest.mark.django_db
def test_a_url_stored_while_insecure_was_allowed_is_refused_at_delivery_once_it_is_not(owner, receiver, settings):
    settings.WEBHOOKS_ALLOW_INSECURE = True
    endpoint = endpoint_for(owner, receiver.url())
    settings.WEBHOOKS_ALLOW_INSECURE = False
    deposit(balance_of(owner))

    deliver()

    assert receiver.received == []
    (attempt,) = deliveries_of(endpoint)[0].attempts.all()
    assert attempt.error == "Refused: The URL must start with https://."


@pytest.mark.django_db
@pytest.mark.usefixtures("insecure_webhooks")
def test_a_delivery_resolves_the_name_once_and_sends_it_as_the_host(owner, receiver, resolver):
    # The name exists only in the test's resolver: the POST reaches the receiver only through the address
    # the delivery resolved and checked, with the name in the Host header.
    resolver["hooks.wallet.test"] = ["127.0.0.1"]
    endpoint = endpoint_for(owner, f"http://hooks.wallet.test:{receiver.port}/hooks")
    deposit(balance_of(owner))

    deliver()

    (request,) = receiver.received
    assert request.headers["host"] == f"hooks.wallet.test:{receiver.port}"
    assert deliveries_of(endpoint)[0].status == DeliveryStatus.DELIVERED


@pytest.mark.django_db
@pytest.mark.usefixtures("insecure_webhooks")  # for the loopback address only: the URLs are https
@pytest.mark.skipif(shutil.which("openssl") is None, reason="makes its certificates with the openssl command")
def test_tls_is_verified_against_the_name_while_connecting_to_the_checked_address(
    owner, resolver, tmp_path, monkeypatch
):
    authority, cert, key = certificates(tmp_path, "hooks.wallet.test")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    monkeypatch.setattr(transport, "ssl_context", lambda: ssl.create_default_context(cafile=str(authority)))
    receiver = Receiver(tls=server_tls)
    resolver["hooks.wallet.test"] = resolver["impostor.wallet.test"] = ["127.0.0.1"]
    try:
        named = endpoint_for(owner, f"https://hooks.wallet.test:{receiver.port}/hooks")
        impostor = endpoint_for(owner, f"https://impostor.wallet.test:{receiver.port}/hooks")
        deposit(balance_of(owner))

        deliver()
    finally:
        receiver.close()

    (request,) = receiver.received
    assert request.headers["host"] == f"hooks.wallet.test:{receiver.port}"
    assert deliveries_of(named)[0].status == DeliveryStatus.DELIVERED
    # The same address under a name its certificate does not carry: the handshake fails, nothing is sent.
    (attempt,) = deliveries_of(impostor)[0].attempts.all()
    assert attempt.status_code is None and "CERTIFICATE_VERIFY_FAILED" in attempt.error


# --- the development switch ---------------------------------------------------------------------------------------


def _check(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=service_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db
def test_allowing_insecure_webhooks_is_refused_with_debug_off():
    refused = _check(WEBHOOKS_ALLOW_INSECURE="true", DEBUG="false")
    allowed = _check(WEBHOOKS_ALLOW_INSECURE="true", DEBUG="true")

    assert refused.returncode != 0
    assert "WEBHOOKS_ALLOW_INSECURE" in refused.stderr and "DEBUG is off" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
