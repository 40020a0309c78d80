"""DRF throttles kept in Redis: anonymous callers, each user, and failed logins.

Every throttle that counts per address takes it from `client_ip`, the one
place that decides who the client is behind the configured proxies.

A fixed-window counter (`INCR`, and `EXPIRE` on the window's first request,
in one script call: one command, one round trip) rather than DRF's
`SimpleRateThrottle`, which stores every request's timestamp per key and
raises when Redis is down.

If Redis is down the throttles let requests through (and say so in the log,
at most once every few seconds), so that reads and logins keep working while
money movements answer 503 on their locks. After a failure they skip Redis
for a short while instead of paying the connect timeout on every request.
Without `REDIS_URL` (single-process development mode) nothing is throttled.

A plain money movement's count is not a call of its own: the fast path
(transactions/fast_path.py) takes an `Admission` instead, and the script
that takes the movement's balance locks makes the count first and takes the
locks only within the limit (`wallets.locks`): one round trip for both.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django_redis import get_redis_connection
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from wallet_project.redis_scripts import COUNT_SCRIPT, DirectScript, ScriptRunner

logger = logging.getLogger("wallet.throttling")

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# After Redis fails, skip it for this many seconds (fail open without waiting on it).
_BACKOFF_SECONDS = 2.0
_state = {"down_until": 0.0, "last_warning": 0.0}

# The script, bound to the client it was made for (django-redis hands out one client per cache).
_count_script: tuple[redis.Redis, DirectScript] | None = None


def _count(client: redis.Redis, key: str, ttl: int) -> int:
    """One script call on this thread's own connection (`wallet_project.redis_scripts`; EVALSHA, and
    SCRIPT LOAD then again if Redis lost it)."""
    global _count_script
    if _count_script is None or _count_script[0] is not client:
        _count_script = (client, DirectScript(ScriptRunner(client), COUNT_SCRIPT))
    return int(_count_script[1](keys=[key], args=[ttl]))


def parse_rate(rate: str) -> tuple[int, int]:
    """'100/minute' → (100, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


def client_ip(request: HttpRequest | Request) -> str:
    """The client's address: the socket's, or, behind `NUM_PROXIES` trusted proxies, the one they saw.

    Each proxy appends the address it received the request from to
    `X-Forwarded-For`, so the entry `NUM_PROXIES` from the end was written by
    the outermost trusted proxy about the client; anything to its left is
    the client's own to write, and ignored. A value there that is not an IP
    address (a misconfigured proxy) falls back to the socket's address.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    hops = forwarded.split(",")
    candidate = hops[-min(proxies, len(hops))].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _redis_unavailable(exc: Exception) -> None:
    now = time.monotonic()
    _state["down_until"] = now + _BACKOFF_SECONDS
    if now - _state["last_warning"] > 10:
        _state["last_warning"] = now
        logger.warning("throttling skipped: Redis unavailable", extra={"error": type(exc).__name__})


def _usable() -> bool:
    return bool(settings.REDIS_URL) and time.monotonic() >= _state["down_until"]


def _window_key(scope: str, ident: str, period: int) -> tuple[str, int]:
    now = time.time()
    window = int(now // period)
    remaining = math.ceil((window + 1) * period - now)
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'wallet')}:throttle:{scope}:{ident}:{window}", remaining


@dataclass
class Admission:
    """A request's count against a throttle, left to the call that takes its movement's balance locks.

    A `wallets.locks.Gate`, handed to the locks through the posting engine
    (`transactions.posting.engine.before_locks`): `wallets.locks` makes the
    count (`COUNT_SCRIPT` on `key`, expiring after
    `ttl` seconds) in the script that takes the locks, before them, and takes
    them only if the count is within `limit`; otherwise it raises `refusal()`,
    holding nothing. It marks the admission `counted` when it sends that
    script, whatever the answer. A movement refused before it asks for its
    locks (invalid input, an unknown balance) has not been counted: its caller
    then counts it with `settle()`, so every request is counted once, as by
    DRF's own check of the throttles.
    """

    throttle: RedisRateThrottle
    key: str
    limit: int
    ttl: int
    counted: bool = False

    def refusal(self) -> Throttled:
        return Throttled(self.throttle.wait())

    def settle(self, request: Request) -> bool:
        """Count the request now if the locks did not; whether it is within the limit (after the locks: True)."""
        if self.counted:
            return True
        self.counted = True
        return self.throttle.allow_request(request, None)


class RedisRateThrottle(BaseThrottle):
    """Counts requests per identity in fixed windows in Redis; fails open."""

    scope = ""
    rate_setting = ""

    def __init__(self) -> None:
        self.limit, self.period = parse_rate(getattr(settings, self.rate_setting))
        self.wait_seconds: int | None = None

    def identity(self, request: Request, view: Any) -> str | None:
        raise NotImplementedError

    def get_ident(self, request: Request) -> str:
        return client_ip(request)

    def _count(self, ident: str, *, increment: bool) -> int | None:
        """The count of this window (after adding one if `increment`); None when Redis is unusable."""
        if not _usable():
            return None
        key, remaining = _window_key(self.scope, ident, self.period)
        try:
            client = get_redis_connection("default")
            if not increment:
                return int(client.get(key) or 0)
            return _count(client, key, remaining + 1)
        except redis.RedisError as exc:
            _redis_unavailable(exc)
            return None
        finally:
            self.wait_seconds = remaining

    def allow_request(self, request: Request, view: Any) -> bool:
        ident = self.identity(request, view)
        if ident is None:
            return True
        count = self._count(ident, increment=True)
        return count is None or count <= self.limit

    def admission(self, request: Request) -> Admission | None:
        """This request's count, to be made with its movement's locks (`Admission`); None when this
        throttle would not ask Redis now (no identity to count, or Redis failing): `allow_request`
        then answers at once."""
        ident = self.identity(request, None)
        if ident is None or not _usable():
            return None
        key, remaining = _window_key(self.scope, ident, self.period)
        self.wait_seconds = remaining
        return Admission(self, key, self.limit, remaining + 1)

    def wait(self) -> float | None:
        return self.wait_seconds


class AnonThrottle(RedisRateThrottle):
    """Anonymous callers, per client IP."""

    scope = "anon"
    rate_setting = "THROTTLE_ANON_RATE"

    def identity(self, request: Request, view: Any) -> str | None:
        if request.user is not None and request.user.is_authenticated:
            return None
        return self.get_ident(request)


class UserThrottle(RedisRateThrottle):
    """Each authenticated user, whatever IP they come from."""

    scope = "user"
    rate_setting = "THROTTLE_USER_RATE"

    def identity(self, request: Request, view: Any) -> str | None:
        if request.user is None or not request.user.is_authenticated:
            return None
        return str(request.user.pk)


def login_account(email: str) -> str:
    """Whom a login attempt with this email is against: the account the login resolves it to, if any.

    The login finds the account with the user manager's case-insensitive
    match, which PostgreSQL decides (`UPPER`): "ſam@…" and "ıan@…" reach
    "sam@…" and "ian@…", while Python's `lower()` keeps them apart. Keyed by
    the account, every spelling that reaches it shares one counter; an email
    that reaches no account is keyed by its NFKC case fold.
    """
    email = email.strip()  # as the login's form fields and serializer trim it
    user_model = get_user_model()
    if _could_be_stored(email, user_model):
        account_ids = list(user_model._default_manager.login_matches(email).values_list("pk", flat=True)[:2])
        if len(account_ids) == 1:
            return f"user:{account_ids[0]}"
    return "email:" + unicodedata.normalize("NFKC", email).casefold()


def _could_be_stored(email: str, user_model: Any) -> bool:
    """Whether an account could have this email: PostgreSQL refuses a NUL in text (an error, not a miss)."""
    return "\x00" not in email and len(email) <= user_model._meta.get_field("email").max_length


class FailedLoginThrottle(RedisRateThrottle):
    """Failed logins of one login attempt's (client IP, account) pair, for the API and the admin alike.

    Keyed by account alone, an attacker could lock every user out; keyed by IP
    alone, one user's typos would block a whole office behind one NAT. Only
    failures count: `allow_request` reads the counter, `record_failure` adds
    one. A throttled attempt is refused before its password is checked.
    """

    scope = "login"
    rate_setting = "THROTTLE_LOGIN_RATE"

    def __init__(self, request: HttpRequest | Request, email: object) -> None:
        super().__init__()
        self.ident: str | None = None
        if isinstance(email, str) and email and _usable():
            pair = f"{client_ip(request)}|{login_account(email)}"
            self.ident = hashlib.sha256(pair.encode()).hexdigest()

    def identity(self, request: Request, view: Any) -> str | None:
        return self.ident

    def allow_request(self, request: Request | None = None, view: Any = None) -> bool:
        if self.ident is None:
            return True
        count = self._count(self.ident, increment=False)
        return count is None or count < self.limit

    def record_failure(self) -> None:
        if self.ident is not None:
            self._count(self.ident, increment=True)
