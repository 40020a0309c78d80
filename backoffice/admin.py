"""Reconcile's runs in the back office, read-only: the command writes them (`manage.py reconcile`)."""

from __future__ import annotations

from django.contrib import admin

from backoffice.models import ReconcileRun
from wallet_project.admin_helpers import ReadOnlyAdminMixin


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("finished_at", "outcome", "problem_count", "duration", "verdict")
    list_display_links = ("finished_at",)
    list_filter = ("ok",)
    fields = ("started_at", "finished_at", "outcome", "problem_count", "summary")
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="outcome", boolean=True, ordering="ok")
    def outcome(self, run: ReconcileRun) -> bool:
        return run.ok

    @admin.display(description="took")
    def duration(self, run: ReconcileRun) -> str:
        return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"

    @admin.display(description="summary")
    def verdict(self, run: ReconcileRun) -> str:
        # The last line says what failed (a failed run's first line is the counts, as a passed run's).
        return run.summary.splitlines()[-1] if run.summary else "—"
