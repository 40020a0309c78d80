"""Tells gunicorn's arbiter that a sync worker busy with one long answer is still making progress.

A sync worker reports to the arbiter between requests only; one that has not
reported for `GUNICORN_TIMEOUT` seconds is killed as hung, and the answer it
was streaming is cut. A statement of a busy balance over a year can take
longer than that to write (docs/OPERATIONS.md, "Statements"): it calls
`beat()` after each chunk of entries, so the worker is kept while it makes
progress. A worker that stops making progress (a query that hangs, a client
that stops reading and fills the socket) stops beating, and is killed on
time as before. Outside gunicorn (tests, `runserver`) `beat` does nothing.
"""

from __future__ import annotations

from typing import Any

_worker: Any = None


def remember(worker: Any) -> None:
    """Called once per worker process by gunicorn's `post_worker_init` hook (gunicorn.conf.py)."""
    global _worker
    _worker = worker


def beat() -> None:
    """Tell the arbiter this worker is alive (one `utime` of its heartbeat file)."""
    if _worker is not None:
        _worker.notify()
