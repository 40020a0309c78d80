"""Book the pending cashback rewards in batches (`loyalty.booking`): once, or as a small worker with `--loop`.

A payment writes its reward `pending` in its own transaction; this moves the
money a moment later, a batch per posting, so that the programme's funding
balance is locked once per batch and never by a payment. Rewards stay pending
(and visible as such in the API) until a round books them: run the worker
next to the web processes, one or more (two workers lock the same balances
and see each other's work under the locks).
"""

from __future__ import annotations

import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from loyalty.booking import DEFAULT_BATCH, Round, rewards_book


class Command(BaseCommand):
    help = "Book the pending loyalty cashback (once, or every --interval seconds with --loop)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=f"Rewards per round ({DEFAULT_BATCH}).")
        parser.add_argument("--loop", action="store_true", help="Keep booking until SIGTERM or SIGINT.")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds between rounds that found a batch not full (1)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch: int = max(options["batch"], 1)
        if not options["loop"]:
            self.stdout.write(self._summary(rewards_book(limit=batch)))
            return
        stopping = {"now": False}

        def stop(signum: int, frame: object) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("Booking loyalty cashback; SIGTERM or SIGINT stops after the current round.")
        self.stdout.flush()
        while not stopping["now"]:
            done = rewards_book(limit=batch)
            if done.booked or done.unfunded or done.reversed:
                self.stdout.write(self._summary(done))
            connection.close_if_unusable_or_obsolete()
            # A full batch that moved on means more rewards may be waiting: go on at once.
            more = done.pending >= batch and done.left_pending < done.pending
            self._pause(0 if more else options["interval"], stopping)
        self.stdout.write("Stopped.")

    @staticmethod
    def _summary(done: Round) -> str:
        return (
            f"Booked {done.booked} reward(s), {done.unfunded} unfunded, {done.reversed} refunded before booking, "
            f"{done.left_pending} left pending."
        )

    @staticmethod
    def _pause(seconds: float, stopping: dict[str, bool]) -> None:
        """Sleep in short steps, so that a signal stops the worker within a fraction of a second."""
        deadline = time.monotonic() + seconds
        while not stopping["now"] and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))
