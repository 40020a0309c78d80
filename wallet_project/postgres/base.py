"""Django's PostgreSQL backend, with a per-request health check that costs no round trip when it can.

With `CONN_HEALTH_CHECKS`, Django checks a persistent connection before its
first use in each request by sending `SELECT 1`: one more round trip to
PostgreSQL on every API request, a ninth of a transfer's (docs/PERFORMANCE.md,
"Health check without a round trip").
A connection that is idle between requests has nothing to read: whatever the
server says to it unasked (it is shutting down, it terminated the backend, an
idle timeout) makes its socket readable, and so does the socket's end. So the
check first polls the socket without waiting: nothing to read, and psycopg
knows of no error, means the connection is as the last request left it;
anything readable, and Django's own `SELECT 1` decides. After an
error in a request, Django's stricter check (`is_usable`) is unchanged.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if self.health_check_enabled and not self.health_check_done and not self.pool and self._idle_and_quiet():
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _idle_and_quiet(self) -> bool:
        """Open, outside a transaction, with nothing from the server waiting to be read."""
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return False
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable
