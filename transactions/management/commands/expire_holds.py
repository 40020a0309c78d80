"""Mark the holds past their expiry `expired` and release what they reserved, in batches of balances.

Not needed for correctness: a hold past `expires_at` already reserves nothing
in every read, and the next movement on its balance releases it under the
lock. The sweep keeps `held_amount`, the holds' statuses and the event of the
expiry close to the moment it happened on balances that nothing else touches.
Run it once (cron) or as a small worker with `--loop`.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from transactions.holds.services import holds_expire


class Command(BaseCommand):
    help = "Release the holds past their expiry (once, or every --interval seconds with --loop)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=500, help="Balances swept per round (500).")
        parser.add_argument("--loop", action="store_true", help="Keep sweeping until SIGTERM or SIGINT.")
        parser.add_argument(
            "--interval", type=float, default=5.0, help="Seconds between rounds that found nothing (5)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch: int = max(options["batch"], 1)
        if not options["loop"]:
            self.stdout.write(f"Expired {holds_expire(limit=batch).holds} hold(s).")
            return
        stopping = {"now": False}

        def stop(signum: int, frame: object) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("Sweeping expired holds; SIGTERM or SIGINT stops after the current round.")
        while not stopping["now"]:
            swept = holds_expire(limit=batch)
            if swept.holds:
                self.stdout.write(f"Expired {swept.holds} hold(s).")
            connection.close_if_unusable_or_obsolete()
            # A full batch means more balances may be due: go on at once.
            self._pause(0 if swept.balances >= batch else options["interval"], stopping)
        self.stdout.write("Stopped.")

    @staticmethod
    def _pause(seconds: float, stopping: dict[str, bool]) -> None:
        """Sleep in short steps, so that a signal stops the worker within a fraction of a second."""
        deadline = time.monotonic() + seconds
        while not stopping["now"] and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))
