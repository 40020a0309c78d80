"""How far behind each read replica is, asked at most once a second per process, and which may be read.

A replica is read only while it is **in recovery** (a streaming standby: a
promoted or misconfigured server would answer from a history of its own),
**reachable**, and its **replay lag** is at most `REPLICA_MAX_LAG_SECONDS`.

The lag, as the replica itself sees it (`LAG_SQL`):

* nothing received is waiting to be replayed, and a WAL receiver is running
  (the stream is up): 0. An idle primary sends nothing, so the time of the
  last replayed commit says nothing about staleness there: it may be an hour
  old while the replica holds everything.
* otherwise, the time since the last replayed commit: the replica has
  received WAL it has not replayed yet (paused, or busy with a long replay),
  or its stream is down and it cannot know what it misses. This can
  overstate the lag (a write that arrives after an idle hour reads as an
  hour for the instant before it is replayed), never understate what was
  received; a false "lagging" lasts one check and sends reads to the primary.
  WAL the replica has not received yet is invisible to it; on a healthy
  stream that is milliseconds.

Each process keeps one `ReplicaState` per replica. A state older than
`CHECK_INTERVAL` is asked again by the next read that wants a replica, on
that thread's own connection to it, which the read then uses. A replica that
cannot be reached is left alone for `DOWN_RECHECK_SECONDS`, and a quick TCP
connect (`REACH_TIMEOUT`) is tried before PostgreSQL's driver, whose connect
timeout is at least two seconds: a stopped server refuses at once, an
unreachable host costs one request a quarter of a second every few seconds,
not every request two seconds.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, connections

logger = logging.getLogger("wallet.replicas")

# Seconds between two lag checks of one replica by one process.
CHECK_INTERVAL = 1.0
# Seconds a replica that could not be reached is skipped before it is tried again.
DOWN_RECHECK_SECONDS = 5.0
# Seconds a TCP connect to a replica may take before it counts as unreachable.
REACH_TIMEOUT = 0.25

LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE
           WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AND EXISTS (SELECT FROM pg_stat_wal_receiver)
               THEN 0
           ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())
       END
"""

OK = "ok"
LAGGING = "lagging"
UNAVAILABLE = "unavailable"
NOT_A_REPLICA = "not a replica"


@dataclass(frozen=True)
class ReplicaState:
    """What the last check of one replica found: `status` (OK, LAGGING, UNAVAILABLE, NOT_A_REPLICA) and the lag.

    `lag_seconds` is None when it could not be measured (the replica is down,
    or has replayed no commit since it started while WAL waits to be replayed).
    """

    alias: str
    status: str
    lag_seconds: float | None
    checked_at: float  # time.monotonic()

    @property
    def usable(self) -> bool:
        return self.status == OK

    def due(self, now: float) -> bool:
        wait = DOWN_RECHECK_SECONDS if self.status == UNAVAILABLE else CHECK_INTERVAL
        return now - self.checked_at >= wait


_states: dict[str, ReplicaState] = {}
_checking = threading.Lock()


def state_of(alias: str) -> ReplicaState:
    """The replica's state, checked again first if the last check is older than its interval.

    Only one thread of a process checks at a time; the others take the last
    known state meanwhile (none yet: unavailable, so they read the primary).
    """
    now = time.monotonic()
    state = _states.get(alias)
    if state is not None and not state.due(now):
        return state
    if not _checking.acquire(blocking=False):
        return state or ReplicaState(alias, UNAVAILABLE, None, now)
    try:
        state = _states[alias] = _check(alias)
    finally:
        _checking.release()
    return state


def states() -> list[ReplicaState]:
    """Every configured replica's state (checked again where due): what `/ready/` reports."""
    return [state_of(alias) for alias in settings.DATABASE_REPLICAS]


def mark_unavailable(alias: str) -> None:
    """A read on the replica failed with its connection: skip it until its next check is due."""
    _states[alias] = ReplicaState(alias, UNAVAILABLE, None, time.monotonic())


def forget() -> None:
    """Drop every known state (tests, and settings that changed): the next read checks again."""
    _states.clear()


def _check(alias: str) -> ReplicaState:
    connection = connections[alias]
    checked_at = time.monotonic()
    if connection.connection is None and not _reachable(connection.settings_dict):
        return ReplicaState(alias, UNAVAILABLE, None, checked_at)
    try:
        with connection.cursor() as cursor:
            cursor.execute(LAG_SQL)
            in_recovery, lag = cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("replica unavailable", extra={"replica": alias, "error": type(exc).__name__})
        _close_quietly(alias)
        return ReplicaState(alias, UNAVAILABLE, None, checked_at)
    if not in_recovery:
        logger.warning("replica is not in recovery: not read", extra={"replica": alias})
        return ReplicaState(alias, NOT_A_REPLICA, None, checked_at)
    lag_seconds = float(lag) if isinstance(lag, (Decimal, float, int)) else None
    within = lag_seconds is not None and lag_seconds <= settings.REPLICA_MAX_LAG_SECONDS
    return ReplicaState(alias, OK if within else LAGGING, lag_seconds, checked_at)


def _reachable(settings_dict: dict) -> bool:
    """Whether a TCP connection to the replica's address opens within REACH_TIMEOUT (a Unix socket: assumed)."""
    host = settings_dict.get("HOST") or ""
    if not host or host.startswith("/"):
        return True
    try:
        socket.create_connection((host, int(settings_dict.get("PORT") or 5432)), timeout=REACH_TIMEOUT).close()
    except OSError:
        logger.warning("replica unreachable", extra={"host": host, "port": settings_dict.get("PORT")})
        return False
    return True


def _close_quietly(alias: str) -> None:
    try:
        connections[alias].close()
    except DatabaseError:
        pass
