"""Writes of the back office's own records."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from backoffice.models import ReconcileRun


def reconcile_run_record(*, started_at: datetime, ok: bool, summary: str, problem_count: int = 0) -> ReconcileRun:
    """Record how one `manage.py reconcile` ended (now); a long summary is cut to what the row keeps."""
    limit = ReconcileRun.SUMMARY_MAX_LENGTH
    if len(summary) > limit:
        summary = summary[: limit - 1] + "…"
    return ReconcileRun.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        ok=ok,
        problem_count=problem_count,
        summary=summary,
    )
