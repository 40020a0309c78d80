"""An httpx transport with one deadline for a whole exchange: connecting, TLS, sending and every read.

httpx's timeouts bound each operation (one read, one write), not their sum: a receiver that trickles its
answer a byte at a time, each byte within the read timeout, could hold a sending thread for hours, and with a
few such endpoints every worker. Here every socket operation gets only the time left before the deadline (and
no more than its own timeout), so a delivery ends by then whatever the receiver does; httpx sees the usual
timeout exceptions.

The one reach into httpx's insides: HTTPTransport keeps its httpcore pool in `_pool`, which is replaced by the
same pool on a deadline-keeping network backend. httpx is pinned in requirements.txt, and
`test_a_receiver_that_trickles_its_answer_is_cut_at_the_timeout_too` holds the deadline.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from functools import cache
from typing import Any

import httpcore
import httpx


@cache
def ssl_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's authorities), made once: loading them costs more than a POST."""
    return httpx.create_ssl_context(trust_env=False)


class DeadlineTransport(httpx.HTTPTransport):
    """One connection for one request, to end no later than `deadline` (a `time.monotonic()` value)."""

    def __init__(self, *, deadline: float) -> None:
        super().__init__(verify=ssl_context(), trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context(), max_keepalive_connections=0, network_backend=_DeadlineBackend(deadline)
        )


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float) -> None:
        self._sockets = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(self._deadline, timeout, httpcore.ConnectTimeout)
        stream = self._sockets.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        left = _left(self._deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _left(deadline: float, timeout: float | None, expired: type[Exception]) -> float:
    """The seconds an operation may take: what is left before the deadline, at most its own timeout."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("The delivery's time is up.")
    return left if timeout is None else min(timeout, left)
