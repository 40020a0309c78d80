"""Clients of the Redis primary: at `REDIS_URL`, or wherever Redis Sentinel says it is now.

The balance locks make their own clients (`wallets.locks.RedisLocks`: one with
the short socket timeout, one for the lock waits); the throttles and the cache
use django-redis's, configured in the settings the same way. Both roads end in
the same behaviour:

* **Without `REDIS_SENTINELS`** a client is `redis.Redis.from_url(REDIS_URL)`,
  with the short timeouts and no retries.
* **With `REDIS_SENTINELS`** a client is redis-py's `Sentinel.master_for`: its
  connections are `SentinelManagedConnection`s, which ask the sentinels for
  the primary's address each time they connect. A connection that fails (the
  primary died) is dropped, and the next call connects again and so asks
  again: while no sentinel names a primary that is up, the call fails at once
  (refused, or redis-py's `MasterNotFoundError`, a `ConnectionError`) and a
  movement answers 503; once a replica is promoted, calls go to it without a
  restart. A connection still open to a primary that has since been demoted
  gets `READONLY` for a write: redis-py drops that connection and raises a
  `ConnectionError` instead, so the next call asks the sentinels again. The
  per-thread script connections (`wallet_project.redis_scripts`) are made by
  the same connection class from the same pool settings, so they find the
  new primary the same way.

No lock is trusted across a failover beyond what the database fences: see
docs/OPERATIONS.md, "Redis Sentinel".
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel

_sentinel: tuple[tuple[tuple[str, int], ...], Sentinel] | None = None
_sentinel_guard = threading.Lock()


def primary_client(url: str, *, socket_timeout: float) -> redis.Redis:
    """A client of the Redis primary, failing fast: the connect timeout of the settings, `socket_timeout`
    for each reply, no retries. `url` gives the database and credentials, and the address unless the
    primary is found through Sentinel."""
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.REDIS_CONNECT_TIMEOUT,
        "socket_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
    }
    if not settings.REDIS_SENTINELS:
        return redis.Redis.from_url(url, **options)
    address = {name: value for name, value in parse_url(url).items() if name not in ("host", "port")}
    return sentinels().master_for(settings.REDIS_SENTINEL_MASTER, redis_class=redis.Redis, **address, **options)


def sentinels() -> Sentinel:
    """This process's client of the sentinels of `REDIS_SENTINELS` (made again if the setting changes)."""
    global _sentinel
    addresses = tuple(settings.REDIS_SENTINELS)
    with _sentinel_guard:
        if _sentinel is None or _sentinel[0] != addresses:
            _sentinel = (addresses, Sentinel(list(addresses), sentinel_kwargs=dict(settings.REDIS_SENTINEL_KWARGS)))
        return _sentinel[1]


def reset() -> None:
    """Forget the sentinels' client (tests that point the settings elsewhere)."""
    global _sentinel
    with _sentinel_guard:
        if _sentinel is not None:
            _sentinel[1].close()
        _sentinel = None
