"""Which replica, if any, the reads of the current block go to: one context variable, read by the router."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_routed: ContextVar[str | None] = ContextVar("replica_routed", default=None)


def routed_alias() -> str | None:
    """The replica chosen for the current block, or None (the primary)."""
    return _routed.get()


@contextmanager
def routed_to(alias: str | None) -> Iterator[None]:
    """Send the router's reads in this block to `alias` (None: the primary)."""
    token = _routed.set(alias)
    try:
        yield
    finally:
        _routed.reset(token)
