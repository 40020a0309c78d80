"""Marking a read as one that tolerates a replica's staleness, and running it there or on the primary.

A read goes to a replica only when all of these hold, else to the primary
(`choose`):

* replicas are configured and one is usable (`monitor`: in recovery,
  reachable, lag within `REPLICA_MAX_LAG_SECONDS`);
* no transaction is open on the primary (a read inside a movement reads what
  the movement locked);
* the reader has not written in the last `REPLICA_STICKY_SECONDS`
  (`recent_writes`; Redis unreachable counts as "has written").

Three ways to mark a read, all keyed on the user who reads:

* `@replica_reads` on a view (a function or a view method): its ORM reads go
  to the replica; if the replica fails under it (a lost connection, a
  cancelled query, a column a migration added that it has not replayed), or
  the view calls `recheck_on_primary()`, the view runs again on the primary
  and the client sees no error. The view must only read.
* `read_from_replica(work, reader=user)`: the same for any callable, e.g. in
  a selector or a service that builds a statement.
* `queryset.using(replica_alias(reader=user))`: for a queryset evaluated after
  the function returns (a streamed export). No second try: a replica lost in
  the middle of it fails as a lost primary would.

Anything not marked reads the primary (`router.ReplicaRouter`).
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpRequest
from rest_framework.request import Request

from wallet_project.replicas import monitor, recent_writes
from wallet_project.replicas.routing import routed_alias, routed_to

logger = logging.getLogger("wallet.replicas")

T = TypeVar("T")
View = TypeVar("View", bound=Callable[..., Any])


class StaleReplica(Exception):
    """The replica lacks something the read needs (`recheck_on_primary`); `read_from_replica` reads the primary."""


def recheck_on_primary() -> None:
    """Inside a read on a replica, stop and read again on the primary; elsewhere, nothing.

    For a read whose input names something newer than the replica may hold:
    an events feed asked for the events after an event the replica has not
    replayed yet must not answer that the event does not exist.
    """
    if routed_alias() is not None:
        raise StaleReplica()


def choose(reader: Any) -> str | None:
    """The replica this reader's read may go to, or None for the primary."""
    aliases = settings.DATABASE_REPLICAS
    if not aliases or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return None
    usable = [alias for alias in aliases if monitor.state_of(alias).usable]
    if not usable:
        return None
    if reader is not None and reader.is_authenticated and recent_writes.wrote_recently(reader.pk):
        return None
    # Spreading reads, not a secret: any replica will do.
    return usable[0] if len(usable) == 1 else random.choice(usable)  # noqa: S311


def replica_alias(*, reader: Any) -> str:
    """The database alias for `queryset.using()`: a usable replica for this reader, else the primary's."""
    return routed_alias() or choose(reader) or DEFAULT_DB_ALIAS


def read_from_replica(work: Callable[[], T], *, reader: Any) -> T:
    """`work()` with its ORM reads on a replica when `choose` allows, again on the primary if the replica fails."""
    if routed_alias() is not None:  # inside another such read: it chose, and it handles failures
        return work()
    alias = choose(reader)
    if alias is None:
        return work()
    try:
        with routed_to(alias):
            return work()
    except StaleReplica:
        pass
    except DatabaseError as exc:
        if not connections[alias].errors_occurred:
            raise  # the primary failed (a read of an authentication model): nothing a second try mends
        _replica_failed(alias, exc)
    return work()


def replica_reads(view: View) -> View:
    """Mark a view (`view(request, ...)` or `method(self, request, ...)`) as reading from a replica for its user."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request = next((arg for arg in args if isinstance(arg, (HttpRequest, Request))), None)
        if request is None:
            raise TypeError(f"@replica_reads needs a view that takes the request; {view.__qualname__} was given none")
        return read_from_replica(lambda: view(*args, **kwargs), reader=request.user)

    return wrapper  # type: ignore[return-value]


def _replica_failed(alias: str, exc: DatabaseError) -> None:
    wrapper = connections[alias]
    link = wrapper.connection
    lost = link is None or link.closed or link.broken
    if lost:
        monitor.mark_unavailable(alias)
        try:
            wrapper.close()
        except DatabaseError:
            pass
    logger.warning(
        "replica read failed; read again on the primary",
        extra={"replica": alias, "error": type(exc).__name__, "connection_lost": lost},
    )
