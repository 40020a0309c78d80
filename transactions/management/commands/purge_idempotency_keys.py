"""Delete the Idempotency-Key records whose time (IDEMPOTENCY_TTL_SECONDS, 24 h by default) is up.

Expired keys are already ignored by the API; this keeps the table small. Run it
from cron (or any scheduler) every hour or so.
"""

from django.core.management.base import BaseCommand

from transactions.idempotency import idempotency_records_purge


class Command(BaseCommand):
    help = "Delete expired Idempotency-Key records."

    def handle(self, *args: object, **options: object) -> None:
        deleted = idempotency_records_purge()
        self.stdout.write(f"Deleted {deleted} expired idempotency key(s).")
