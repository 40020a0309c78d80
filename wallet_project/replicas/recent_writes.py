"""Read-your-writes: a user who wrote in the last `REPLICA_STICKY_SECONDS` reads the primary.

The marker is a Redis key per user (`wallet:recent-write:<user id>`,
expiring after `REPLICA_STICKY_SECONDS`), on the Redis of the balance locks.

Which writes set it: **every authenticated request with an unsafe method
(POST, PUT, PATCH, DELETE) that succeeded** (status below 400), whoever it
was for, plus every money movement a user books. That is broader than
"changed what a replica serves" (a logout sets it too), and so never misses
a write: a wallet, a balance, a webhook endpoint, a hold, a freeze or an
adjustment in the back office (where the user is the staff member). A
refused or failed request changed nothing and sets nothing. A user who
was paid by someone else has written nothing: their lists may show it a
moment later (at most the replica's lag); the balance endpoints and a
single entry read the primary.

Costs:

* **A money movement sets it in the script that releases its balance locks**
  (`WriteMark`, `wallets.locks.RELEASE_THEN_MARK_SCRIPT`), once its
  transaction has committed: no round trip of its own, so a plain transfer
  keeps its two (tests/test_statement_budget.py, tests/test_replica_routing.py).
* **Any other write** costs one `SET` after its answer is made
  (`RecentWritesMiddleware`), skipped when its movement already set it.
* **A read that could go to a replica** asks once (`EXISTS`), only when a
  replica is usable.

If Redis cannot be asked, the user is taken to have written (the primary
answers), and Redis is not asked again for `_BACKOFF_SECONDS`. If Redis was
down when a write should have set the marker, nothing is known of it: that
user's reads may go to a replica within the lag allowed
(`REPLICA_MAX_LAG_SECONDS`). A marker set after the commit expires
`REPLICA_STICKY_SECONDS` later; with the lag limit plus the one second between
lag checks below that, a replica read after it holds the write.

Without replicas (`DATABASE_REPLICAS` empty) none of this runs: no marker,
no middleware, the movements' release script unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse

from wallets.locks import RedisLocks, get_backend

logger = logging.getLogger("wallet.replicas")

KEY_PREFIX = "wallet:recent-write:"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# After Redis fails, take every user to have written (read the primary) for this long without asking it.
_BACKOFF_SECONDS = 2.0
_state = {"down_until": 0.0}

# The users whose marker this request's movements set in their lock release (None: outside a request).
_marked: ContextVar[set[Any] | None] = ContextVar("recent_writes_marked", default=None)


def key_of(user_id: object) -> str:
    return f"{KEY_PREFIX}{user_id}"


def replicas_configured() -> bool:
    return bool(settings.DATABASE_REPLICAS)


class WriteMark:
    """The marker a movement's lock release sets, in the same script, once the movement has committed.

    A `wallets.locks.Mark`: the posting engine arms it in `on_commit`, so a
    refused or rolled-back movement sets nothing.
    """

    __slots__ = ("armed", "key", "ttl", "user_id")

    def __init__(self, user_id: object) -> None:
        self.user_id = user_id
        self.key = key_of(user_id)
        self.ttl = settings.REPLICA_STICKY_SECONDS
        self.armed = False

    def arm(self) -> None:
        self.armed = True

    def sent(self) -> None:
        marked = _marked.get()
        if marked is not None:
            marked.add(self.user_id)


def mark_for(actor: Any) -> WriteMark | None:
    """The mark of a movement booked by `actor`, or None: no replicas, or no user."""
    if actor is None or not settings.DATABASE_REPLICAS:
        return None
    return WriteMark(actor.pk)


def note_write(user_id: object) -> None:
    """Set the user's marker now (one round trip). A Redis failure is logged, not raised: the write is done."""
    client = _client()
    if client is None:
        return
    try:
        client.set(key_of(user_id), 1, ex=settings.REPLICA_STICKY_SECONDS)
    except redis.RedisError as exc:
        _state["down_until"] = time.monotonic() + _BACKOFF_SECONDS
        logger.warning("could not note a recent write", extra={"error": type(exc).__name__})


def wrote_recently(user_id: object) -> bool:
    """Whether the user wrote in the last REPLICA_STICKY_SECONDS; True when Redis cannot say."""
    client = _client()
    if client is None or time.monotonic() < _state["down_until"]:
        return True
    try:
        return bool(client.exists(key_of(user_id)))
    except redis.RedisError as exc:
        _state["down_until"] = time.monotonic() + _BACKOFF_SECONDS
        logger.warning("recent writes unknown, reading the primary", extra={"error": type(exc).__name__})
        return True


def _client() -> redis.Redis | None:
    backend = get_backend()
    return backend.client if isinstance(backend, RedisLocks) else None


class RecentWritesMiddleware:
    """Sets the marker of the user of each successful unsafe request that did not set it with a movement."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not replicas_configured():
            raise MiddlewareNotUsed()
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in SAFE_METHODS:
            return self.get_response(request)
        token = _marked.set(set())
        try:
            response = self.get_response(request)
            marked = _marked.get()
        finally:
            _marked.reset(token)
        if response.status_code < 400:
            # DRF sets the user it authenticated on the Django request; the admin's middleware, the session's.
            user = request.__dict__.get("user")
            if user is not None and user.is_authenticated and user.pk not in (marked or ()):
                note_write(user.pk)
        return response
