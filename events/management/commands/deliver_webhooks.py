"""The webhook worker: turn new events into deliveries, and send the deliveries that are due.

Run as many as needed, on as many machines: each claims its work with `FOR UPDATE SKIP LOCKED` and a lease
(events/webhooks/delivery.py), so two workers never send the same delivery at once, and the deliveries of a
worker that died are sent by another once its lease has run out. `--once` does one pass and exits; otherwise
it runs until SIGTERM or SIGINT, which let the POSTs under way finish and be recorded before it stops.
"""

from __future__ import annotations

import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils import timezone

from events.webhooks.delivery import deliver_due
from events.webhooks.dispatch import events_dispatch

logger = logging.getLogger("wallet.webhooks")


class Command(BaseCommand):
    help = "Deliver webhooks: fan out new events and send due deliveries (once, or until SIGTERM)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass over what is waiting now, then exit.")
        parser.add_argument(
            "--concurrency", type=int, default=8, help="Deliveries sent side by side, each in its own thread (8)."
        )
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds between rounds that found nothing to do (1)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        concurrency: int = max(options["concurrency"], 1)
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook") as executor:
            if options["once"]:
                dispatched, sent = self._one_pass(executor, concurrency)
                self.stdout.write(f"Dispatched {dispatched} event(s); sent {sent} delivery attempt(s).")
                return
            self._loop(executor, concurrency, options["interval"])

    @staticmethod
    def _one_pass(executor: ThreadPoolExecutor, concurrency: int) -> tuple[int, int]:
        """Every waiting event dispatched, then every delivery due by then sent once (a retry it schedules
        falls later, so the pass ends)."""
        dispatched = sent = 0
        while batch := events_dispatch():
            dispatched += batch
        due_before = timezone.now()
        while batch := deliver_due(limit=concurrency, executor=executor, due_before=due_before):
            sent += batch
        return dispatched, sent

    def _loop(self, executor: ThreadPoolExecutor, concurrency: int, interval: float) -> None:
        stopping = {"now": False}

        def stop(signum: int, frame: object) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("Delivering webhooks; SIGTERM or SIGINT stops after the current round.")
        while not stopping["now"]:
            try:
                busy = events_dispatch() + deliver_due(limit=concurrency, executor=executor)
            except DatabaseError as exc:
                # The database is away, or a round lost a race (an endpoint deleted under its fan-out): the
                # round's transaction rolled back, and what it had claimed comes back with its lease.
                logger.warning("webhook worker: round failed", extra={"error": type(exc).__name__})
                if isinstance(exc, (OperationalError, InterfaceError)):
                    connection.close()
                busy = 0
            connection.close_if_unusable_or_obsolete()
            self._pause(0 if busy else interval, stopping)
        self.stdout.write("Stopped.")

    @staticmethod
    def _pause(seconds: float, stopping: dict[str, bool]) -> None:
        """Sleep in short steps, so that a signal stops the worker within a fraction of a second."""
        deadline = time.monotonic() + seconds
        while not stopping["now"] and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))
