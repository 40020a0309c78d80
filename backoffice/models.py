"""What the back office keeps of its own: the outcome of each `manage.py reconcile`."""

from __future__ import annotations

from django.db import models


class ReconcileRun(models.Model):
    """One run of `manage.py reconcile`: when, whether every invariant held, and what it said.

    Written by the command when it ends, one row per run, whatever the outcome
    (a run that crashed is a failed one, with the error as its summary). The
    dashboard shows the newest; the admin lists them all, read-only.
    """

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    # How many balances, references and other subjects were wrong (0 when ok; 0 too for a crash, which found none).
    problem_count = models.PositiveIntegerField(default=0)
    # The command's summary line, then what it names as wrong (at most SUMMARY_MAX_LENGTH characters).
    summary = models.TextField()

    SUMMARY_MAX_LENGTH = 4000

    class Meta:
        ordering = ["-id"]
        verbose_name = "reconcile run"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(finished_at__gte=models.F("started_at")), name="reconcilerun_finishes_after_start"
            ),
            models.CheckConstraint(
                condition=models.Q(ok=False) | models.Q(problem_count=0), name="reconcilerun_ok_has_no_problem"
            ),
        ]

    def __str__(self) -> str:
        return f"{'OK' if self.ok else 'Failed'} at {self.finished_at:%Y-%m-%d %H:%M:%S %Z}"
