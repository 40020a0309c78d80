"""Lua scripts called on a Redis connection the calling thread keeps, without redis-py's per-call machinery.

A money movement makes two Redis calls, each one script: the lock acquire
(which, on the API's fast path, makes the throttle's count first) and the
lock release; through DRF, the throttle's count is a third. Through
redis-py's `Script`, a call goes through the client's `execute_command`, its
retry wrapper, and the connection pool's checkout and return (a poll of the
socket, events, a lock), about 178,000 instructions; sending the same
`EVALSHA` on a connection and reading its answer is about 50,000 (counted
with callgrind; docs/PERFORMANCE.md, "Redis scripts on the thread's own
connection").

`ScriptRunner` keeps one connection per thread and process, made with the
client's own pool settings (address, database, timeouts). Before each call
it checks, without waiting, that the idle connection has nothing to read, as
redis-py's pool does when it hands one out: a server that restarted or
dropped the connection is noticed there, and the call goes to a new
connection instead of failing. Through Sentinel the connection class is
redis-py's `SentinelManagedConnection`, and each new connection asks the
sentinels where the primary is (`wallet_project.redis_connections`). Errors
are redis-py's own: a connection that fails while sending or reading is
disconnected and made again on the next call, so a timed-out reply can never
be read as the answer to a later command (asked for explicitly: redis-py's
Sentinel connection does not disconnect on a failed read unless told to). A
script that Redis has lost (a restart, `SCRIPT FLUSH`, a promoted replica) is
loaded again and the call repeated, as redis-py's `Script` does. There are
no retries: a failed call raises at once, which is what the callers want
(503 for the locks, fail-open for the throttle).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import NoScriptError

Arg = str | bytes | int | float


class ScriptRunner:
    """Calls scripts on one Redis connection per thread (and per process, after a fork)."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._local = threading.local()

    def connection(self) -> Any:
        local = self._local
        connection = getattr(local, "connection", None)
        if connection is None or local.pid != os.getpid():
            pool = self._pool
            connection = local.connection = pool.connection_class(**pool.connection_kwargs)
            local.pid = os.getpid()
        elif connection.is_connected:
            # An idle connection has nothing to read, unless the server has closed it (a restart, a
            # failover, its idle timeout): then start afresh, as redis-py's pool does on checkout,
            # rather than fail the next call.
            try:
                stale = connection.can_read()
            except redis.ConnectionError:  # the server's end of the socket is closed
                stale = True
            if stale:
                connection.disconnect()
        if not connection.is_connected:
            # Through the connection class's own `connect`: a Sentinel-managed one asks the sentinels
            # where the primary is there (sending on an unconnected socket would not; it would connect
            # to the address the connection was made with).
            connection.connect()
        return connection

    def close(self) -> None:
        """Close this thread's connection (tests, shutdown); the next call opens a new one."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.disconnect()
            self._local.connection = None


class DirectScript:
    """A Lua script, called as redis-py's `Script` is: `script(keys=[...], args=[...])`."""

    def __init__(self, runner: ScriptRunner, source: str) -> None:
        self.runner = runner
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        connection = self.runner.connection()
        command = ("EVALSHA", self.sha, len(keys), *keys, *args)
        connection.send_command(*command)
        try:
            return connection.read_response(disconnect_on_error=True)
        except NoScriptError:
            connection.send_command("SCRIPT", "LOAD", self.source)
            connection.read_response(disconnect_on_error=True)
            connection.send_command(*command)
            return connection.read_response(disconnect_on_error=True)


# A fixed window's count: the throttles', and the gate a movement's lock acquire may count first
# (`wallets.locks.Gate`). KEYS[1]: the window's counter; ARGV[1]: seconds until the window ends, plus one.
COUNT_SCRIPT = """
local count = redis.call("incr", KEYS[1])
if count == 1 then
    redis.call("expire", KEYS[1], ARGV[1])
end
return count
"""
