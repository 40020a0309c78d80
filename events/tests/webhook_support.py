"""Helpers of the webhook tests: a real HTTP receiver on loopback, and events made by real movements."""

from __future__ import annotations

import io
import ssl
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.utils import timezone

from events.models import WebhookDelivery, WebhookEndpoint
from events.webhooks import services
from tests.factories import BalanceFactory, WalletFactory
from transactions.models import TransactionSource
from transactions.services import deposit_create
from wallets.models import WalletBalance

HANG = "hang"  # an answer: keep the connection open and say nothing, until the test ends
TRICKLE = "trickle"  # an answer: a 200, one byte every 0.2 s (each read in time, not all of them)
_TRICKLED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class Receiver:
    """A threaded HTTP server on 127.0.0.1 (a free port) that records every POST and answers as told.

    `answer(...)` queues what the next requests get: a status code, `(status, body, headers)`, HANG or
    TRICKLE. When the queue is empty, requests get 200.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self._answers: deque[Any] = deque()
        self._lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                answer = receiver._take(Received(self.path, headers, body))
                if answer == HANG:
                    receiver.release.wait(timeout=60)
                    return
                if answer == TRICKLE:
                    self._trickle()
                    return
                status, payload, extra = answer if isinstance(answer, tuple) else (answer, b"ok", {})
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up first

            def _trickle(self) -> None:
                try:
                    for byte in _TRICKLED:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        receiver.release.wait(timeout=0.2)
                except OSError:
                    pass  # the client gave up first

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *answers: Any) -> None:
        with self._lock:
            self._answers.extend(answers)

    def _take(self, request: Received) -> Any:
        with self._lock:
            self.received.append(request)
            return self._answers.popleft() if self._answers else 200

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def endpoint_for(user: Any, url: str, event_types: list[str] | None = None) -> WebhookEndpoint:
    return services.webhook_endpoint_create(user=user, url=url, event_types=event_types or ["*"])


def balance_of(user: Any) -> WalletBalance:
    return BalanceFactory(wallet=WalletFactory(owner=user))


def deposit(balance: WalletBalance, amount: str = "10.00") -> None:
    """A real movement through the one road: it writes a `movement.created` event for the balance's owner."""
    deposit_create(
        wallet_balance_id=balance.pk, amount=Decimal(amount), owner=None, created_by=None, source=TransactionSource.SEED
    )


def deliver() -> str:
    """One pass of the worker, as `manage.py deliver_webhooks --once`."""
    out = io.StringIO()
    call_command("deliver_webhooks", "--once", stdout=out)
    return out.getvalue()


def make_due(**filters: Any) -> int:
    """Bring the retries forward to now, instead of waiting for them."""
    return WebhookDelivery.objects.filter(status="pending", **filters).update(next_attempt_at=timezone.now())


def deliveries_of(endpoint: WebhookEndpoint) -> list[WebhookDelivery]:
    return list(endpoint.deliveries.order_by("created_at").prefetch_related("attempts"))


def certificates(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A certificate authority and a server certificate for `name` signed by it, made with the openssl command:
    (the authority's certificate, the server's certificate, the server's key)."""
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, request, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    extensions = directory / "san.cnf"
    extensions.write_text(f"subjectAltName=DNS:{name}\n")
    for command in (
        f"req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=Test-CA -keyout {ca_key} -out {ca_cert}",
        f"req -newkey rsa:2048 -nodes -subj /CN={name} -keyout {key} -out {request}",
        f"x509 -req -in {request} -CA {ca_cert} -CAkey {ca_key} -CAcreateserial -days 1 -extfile {extensions} "
        f"-out {cert}",
    ):
        subprocess.run(["openssl", *command.split()], check=True, capture_output=True)
    return ca_cert, cert, key
