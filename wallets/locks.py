"""Per-balance locks, taken by every money movement before its database transaction.

The Redis locks (python-redis-lock) keep concurrent movements of one balance
from piling up on PostgreSQL row locks and give a bounded wait (429
`lock_timeout`). They are not what keeps money correct: the movement also takes
`SELECT ... FOR NO KEY UPDATE` on the same rows, so if a Redis lock expires
under a slow worker the database still serialises the writers.

How we use python-redis-lock 4.0.1 (see the pitfalls in DESIGN.md):

* Its `acquire(timeout=...)` counts whole seconds and restarts the wait after
  each wake-up that loses the race, so we keep our own deadline: `SET NX EX`
  (the same command its acquire sends), then `BLPOP` on its signal list in
  slices of at most a second, retrying the `SET` after each. The retry is
  sent with the `BLPOP`, in one pipeline, so Redis runs it the moment the
  wait ends: a released lock passes to the woken waiter inside Redis, one
  round trip sooner than if the waiter woke and asked again (the hand-over
  is the rhythm of a busy balance; docs/PERFORMANCE.md, "A waiter's next try
  rides with its wait"). A lock
  whose holder died frees itself after `LOCK_EXPIRE_SECONDS`, and the next
  slice picks it up.
* Release is its own Lua script (`UNLOCK_SCRIPT`), which also wakes one waiter.
* The locks of a movement are taken and released together, each in one
  script call (one command, one round trip): `ACQUIRE_PREFIX_SCRIPT` sends
  its `SET NX EX` for each lock in sorted order and stops at the first busy
  one; `RELEASE_ALL_SCRIPT` runs its unlock script for each. An uncontended
  transfer costs two round trips for its two locks, not four, and a woken
  waiter none of its own. The scripts are called on a connection of the
  thread's own (`wallet_project.redis_scripts`), without redis-py's per-call
  pool and retry machinery: the locks were an eighth of a transfer's Python
  instructions (docs/PERFORMANCE.md, "Balance locks in one script call"). The
  keys, ids, signal lists and
  semantics are the library's, so its own `Lock` (used by `exclusive`)
  interoperates. It needs one Redis server, not a cluster (the keys of one
  call are not in one hash slot).
* The client has a short connect timeout, a short socket timeout and no
  retries, so that with Redis down, or up but hung, a movement answers 503 at
  once. The `BLPOP` waits go through a second client whose socket timeout is
  longer than the lock wait, so that they are never cut short by the socket.
* Locks are taken in sorted id order, the same order as the row locks, so
  A→B and B→A transfers cannot deadlock.
* A caller may hand a `Gate` to the first acquire: a fixed-window count that
  `ADMIT_THEN_ACQUIRE_SCRIPT` makes first and, over its limit, takes no lock
  and answers -1, so the movement is refused holding nothing. The fast path's
  throttle count is one (`wallet_project.throttling.Admission`, 429). The
  count and the locks are one round trip, not two: a plain transfer makes two
  Redis calls in all, the acquire and the release. The throttle's counters and
  the locks live on the same server, `REDIS_URL` (settings.py), or the
  primary that Redis Sentinel names (`wallet_project.redis_connections`).
* A caller may hand a `Mark` to the release: a key that the release script
  sets too, once armed (`RELEASE_THEN_MARK_SCRIPT`), in the same round trip.
  With read replicas, a movement's release marks its user as having written
  (`wallet_project.replicas.recent_writes`), so that their next reads go to
  the primary; without replicas no mark is made and the script is the plain
  release.

Without `REDIS_URL` (single-process development mode) an in-process lock
takes the place of Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol
from uuid import UUID

import redis
import redis_lock
from django.conf import settings
from redis.exceptions import NoScriptError

from wallet_project import redis_connections
from wallet_project.errors import LockTimeout, ServiceUnavailable
from wallet_project.redis_connections import primary_client
from wallet_project.redis_scripts import COUNT_SCRIPT, DirectScript, ScriptRunner

logger = logging.getLogger("wallet.locks")

KEY_PREFIX = "wallet:balance:"

# The locks of one movement, tried in order in one script: the same `SET NX EX`
# python-redis-lock's acquire sends, stopping at the first busy lock. Returns
# how many were taken (a prefix), so no lock is ever held out of order, even
# for an instant. KEYS: the lock keys; ARGV: the expiry, then each lock's id.
ACQUIRE_PREFIX_SCRIPT = """
for i, key in ipairs(KEYS) do
    if not redis.call("set", key, ARGV[i + 1], "nx", "ex", ARGV[1]) then
        return i - 1
    end
end
return #KEYS
"""

# A gate's count (`wallet_project.redis_scripts.COUNT_SCRIPT`), then, within the
# limit, the locks as ACQUIRE_PREFIX_SCRIPT takes them; over it, -1 and no lock.
# KEYS: the counter, then the lock keys; ARGV: the lock expiry, the limit, the
# counter's expiry, then each lock's id.
ADMIT_THEN_ACQUIRE_SCRIPT = (
    """
local count = (function(KEYS, ARGV)
"""
    + COUNT_SCRIPT
    + """
end)({KEYS[1]}, {ARGV[3]})
if count > tonumber(ARGV[2]) then
    return -1
end
return (function(KEYS, ARGV)
"""
    + ACQUIRE_PREFIX_SCRIPT
    + """
end)({unpack(KEYS, 2)}, {ARGV[1], unpack(ARGV, 4)})
"""
)

# python-redis-lock's own UNLOCK_SCRIPT, run for each lock of a movement in one
# call. KEYS: lock and signal key of each lock; ARGV: the signal expiry, then
# each lock's id. Returns per lock 0 (released, one waiter woken) or 1 (it was
# no longer ours: expired, perhaps taken by another).
RELEASE_ALL_SCRIPT = (
    """
local released = {}
for i = 1, #KEYS / 2 do
    local lock_key, signal_key, id = KEYS[2 * i - 1], KEYS[2 * i], ARGV[i + 1]
    released[i] = (function(KEYS, ARGV)
"""
    + redis_lock.UNLOCK_SCRIPT.decode()
    + """
    end)({lock_key, signal_key}, {id, ARGV[1]})
end
return released
"""
)


# RELEASE_ALL_SCRIPT, then `SET key 1 EX ttl` of a mark. KEYS: as RELEASE_ALL_SCRIPT's, then the mark's key;
# ARGV: as RELEASE_ALL_SCRIPT's, then the mark's expiry in seconds.
RELEASE_THEN_MARK_SCRIPT = (
    """
redis.call("set", KEYS[#KEYS], "1", "ex", ARGV[#ARGV])
return (function(KEYS, ARGV)
"""
    + RELEASE_ALL_SCRIPT
    + """
end)({unpack(KEYS, 1, #KEYS - 1)}, {unpack(ARGV, 1, #ARGV - 1)})
"""
)


class Mark(Protocol):
    """A key the release of a movement's locks sets in the same script, if `armed` by then.

    `key` is set to 1 for `ttl` seconds; `sent()` is called once the release
    that set it has answered.
    """

    key: str
    ttl: int
    armed: bool

    def sent(self) -> None: ...


class Gate(Protocol):
    """A count the first acquire of a movement's locks makes before them, in the same script.

    `key` is the fixed window's counter, expiring after `ttl` seconds; within
    `limit` the locks are taken, over it none is and `refusal()` is raised.
    The acquire sets `counted` when it sends the script, whatever the answer,
    so a gate is never counted twice; one that was not (the movement was
    refused before its locks, or ran without Redis) is its owner's to settle.
    """

    key: str
    limit: int
    ttl: int
    counted: bool

    def refusal(self) -> Exception: ...


class _Backend(Protocol):
    def acquire_all(self, names: Sequence[str], deadline: float, gate: Gate | None = None) -> list[object]: ...

    def try_acquire(self, name: str) -> object | None: ...

    def release(self, handle: object) -> None: ...

    def release_all(self, handles: Sequence[object], mark: Mark | None = None) -> None: ...


class RedisLocks:
    """python-redis-lock locks with our own deadline (see the module docstring)."""

    def __init__(self, url: str) -> None:
        # A hung Redis accepts connections but never answers: only the socket timeout ends the wait.
        # Both clients find the primary through Sentinel when it is configured (redis_connections).
        self.client = primary_client(url, socket_timeout=settings.REDIS_SOCKET_TIMEOUT)
        self.waiter = primary_client(url, socket_timeout=settings.LOCK_WAIT_SECONDS + 2)
        self.expire = settings.LOCK_EXPIRE_SECONDS
        # EVALSHA on this thread's own connection, and SCRIPT LOAD then again if Redis lost it (a restart).
        scripts = ScriptRunner(self.client)
        self.acquire_prefix = DirectScript(scripts, ACQUIRE_PREFIX_SCRIPT)
        self.admit_then_acquire = DirectScript(scripts, ADMIT_THEN_ACQUIRE_SCRIPT)
        self.release_many = DirectScript(scripts, RELEASE_ALL_SCRIPT)
        self.release_then_mark = DirectScript(scripts, RELEASE_THEN_MARK_SCRIPT)

    def acquire_all(self, names: Sequence[str], deadline: float, gate: Gate | None = None) -> list[redis_lock.Lock]:
        """The locks of `names`, taken in that order, within `deadline`.

        Every attempt tries all the locks not yet held in one script call
        (`ACQUIRE_PREFIX_SCRIPT`), which stops at the first busy one: one round
        trip when none is busy. Then it waits on that busy lock's signal list,
        at most a second at a time (a lock freed by expiry signals nobody), and
        each wait carries the next attempt (`_wait_then_acquire`). Nothing is
        held out of order while waiting (that is what keeps A→B and B→A from
        deadlocking).

        A `gate` not yet counted is counted by the first attempt
        (`ADMIT_THEN_ACQUIRE_SCRIPT`); over its limit, its `refusal()` is
        raised and no lock was taken.
        """
        locks = [redis_lock.Lock(self.client, name, expire=self.expire) for name in names]
        held: list[redis_lock.Lock] = []
        try:
            wanted = locks
            keys = [lock._name for lock in wanted]
            if gate is None or gate.counted:
                taken = self.acquire_prefix(keys=keys, args=self._acquire_args(wanted))
            else:
                gate.counted = True  # sent, whatever comes back: never counted twice
                expire, *ids = self._acquire_args(wanted)
                taken = self.admit_then_acquire(keys=[gate.key, *keys], args=[expire, gate.limit, gate.ttl, *ids])
                if taken < 0:
                    raise gate.refusal()
            while True:
                held.extend(wanted[:taken])
                if len(held) == len(locks):
                    return held
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LockTimeout(details={"retry_after_seconds": LockTimeout.retry_after_seconds})
                wanted = locks[len(held) :]
                taken = self._wait_then_acquire(wanted, timeout=min(remaining, 1.0))
        except BaseException as exc:
            self.release_all(held)
            if isinstance(exc, redis.RedisError):
                raise ServiceUnavailable("The lock service is unavailable; nothing was written.") from exc
            raise

    def _acquire_args(self, wanted: Sequence[redis_lock.Lock]) -> list[Any]:
        return [self.expire, *(lock._id for lock in wanted)]

    def _wait_then_acquire(self, wanted: Sequence[redis_lock.Lock], timeout: float) -> int:
        """Wait on the first wanted lock's signal list, then try the wanted locks again: one round trip.

        The `BLPOP` and the acquire script go in one pipeline on the waiting
        connection, so Redis runs the script as soon as the `BLPOP` returns (a
        release woke us, or the slice ended): the lock is taken the moment it is
        handed on, not after this process has woken and asked again. On a
        contended balance that is one round trip less in every hand-over, which
        is the whole rhythm of a busy pair. A float BLPOP timeout needs Redis 6+.
        A release between our last attempt and this BLPOP left its signal in the
        list: no wake-up is lost.
        """
        keys = [lock._name for lock in wanted]
        args = self._acquire_args(wanted)
        pipe = self.waiter.pipeline(transaction=False)
        pipe.blpop([wanted[0]._signal], timeout=timeout)
        pipe.evalsha(self.acquire_prefix.sha, len(keys), *keys, *args)
        _, taken = pipe.execute(raise_on_error=False)
        if isinstance(taken, NoScriptError):  # Redis lost the script (a restart): load it and try again
            return self.acquire_prefix(keys=keys, args=args)
        if isinstance(taken, Exception):
            raise taken
        return int(taken)

    def acquire(self, name: str, deadline: float) -> redis_lock.Lock:
        return self.acquire_all([name], deadline)[0]

    def try_acquire(self, name: str) -> redis_lock.Lock | None:
        lock = redis_lock.Lock(self.client, name, expire=self.expire)
        try:
            return lock if self.client.set(lock._name, lock._id, nx=True, ex=self.expire) else None
        except redis.RedisError as exc:
            raise ServiceUnavailable("The lock service is unavailable; nothing was written.") from exc

    def release(self, handle: object) -> None:
        assert isinstance(handle, redis_lock.Lock)
        try:
            handle.release()
        except redis_lock.NotAcquired:
            # It expired while we held it. The row lock fenced the writers, so
            # money is safe; say so, because the expiry is too short for this load.
            logger.warning("balance lock expired before release", extra={"lock": handle._name})
        except redis.RedisError:
            logger.warning("could not release balance lock; it frees itself by expiry", extra={"lock": handle._name})

    def release_all(self, handles: Sequence[object], mark: Mark | None = None) -> None:
        """Release several locks in one round trip: python-redis-lock's unlock script for each, in one call;
        and set `mark` in the same call if it is armed."""
        locks = [handle for handle in handles if isinstance(handle, redis_lock.Lock)]
        if not locks:
            return
        keys = [key for lock in locks for key in (lock._name, lock._signal)]
        args = [locks[0]._signal_expire, *(lock._id for lock in locks)]
        marking = mark if mark is not None and mark.armed else None
        try:
            if marking is None:
                results = self.release_many(keys=keys, args=args)
            else:
                results = self.release_then_mark(keys=[*keys, marking.key], args=[*args, marking.ttl])
        except redis.RedisError:
            logger.warning("could not release balance locks; they free themselves by expiry")
            return
        if marking is not None:
            marking.sent()
        for lock, result in zip(locks, results, strict=True):
            if result == 1:
                # It expired while we held it. The row lock fenced the writers, so
                # money is safe; say so, because the expiry is too short for this load.
                logger.warning("balance lock expired before release", extra={"lock": lock._name})


class LocalLocks:
    """In-process locks for the single-process development mode (no Redis)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def acquire(self, name: str, deadline: float) -> object:
        return self.acquire_all([name], deadline)[0]

    def acquire_all(self, names: Sequence[str], deadline: float, gate: Gate | None = None) -> list[object]:
        # Nothing is counted without Redis; a gate is left uncounted, for its owner to settle.
        held: list[object] = []
        try:
            for name in names:
                with self._guard:
                    lock = self._locks.setdefault(name, threading.Lock())
                if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    raise LockTimeout(details={"retry_after_seconds": LockTimeout.retry_after_seconds})
                held.append(lock)
        except BaseException:
            self.release_all(held)
            raise
        return held

    def try_acquire(self, name: str) -> object | None:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        return lock if lock.acquire(blocking=False) else None

    def release(self, handle: object) -> None:
        assert isinstance(handle, type(self._guard))
        handle.release()

    def release_all(self, handles: Sequence[object], mark: Mark | None = None) -> None:
        # No Redis, no read replicas (settings.py refuses them without REDIS_URL): nothing to mark.
        for handle in reversed(handles):
            self.release(handle)


_backend: _Backend | None = None
_backend_guard = threading.Lock()


def get_backend() -> _Backend:
    global _backend
    if _backend is None:
        with _backend_guard:
            if _backend is None:
                _backend = RedisLocks(settings.REDIS_URL) if settings.REDIS_URL else LocalLocks()
    return _backend


def reset_backend() -> None:
    """Forget the backend and the sentinels' client (tests that point the Redis settings elsewhere)."""
    global _backend
    _backend = None
    redis_connections.reset()


def lock_name(balance_id: UUID | str) -> str:
    return f"{KEY_PREFIX}{balance_id}"


@contextmanager
def balance_locks(balance_ids: Iterable[UUID], gate: Gate | None = None, mark: Mark | None = None) -> Iterator[None]:
    """Hold the locks of these balances, taken in sorted id order within one deadline, after counting
    `gate` if it is not yet counted (`RedisLocks.acquire_all`); their release sets `mark` if it was armed.

    Raises LockTimeout when the wait runs out, ServiceUnavailable when Redis is unreachable, the
    gate's refusal when it is over its limit.
    """
    backend = get_backend()
    deadline = time.monotonic() + settings.LOCK_WAIT_SECONDS
    names = [lock_name(balance_id) for balance_id in sorted(set(balance_ids))]
    held = backend.acquire_all(names, deadline, gate)
    try:
        yield
    finally:
        backend.release_all(held, mark)


@contextmanager
def exclusive(name: str) -> Iterator[bool]:
    """Try once, without waiting, to hold the lock `name`; yields whether it is held.

    Raises ServiceUnavailable when Redis is unreachable.
    """
    backend = get_backend()
    handle = backend.try_acquire(name)
    try:
        yield handle is not None
    finally:
        if handle is not None:
            backend.release(handle)
