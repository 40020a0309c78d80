"""The staff-action history: read-only, filtered by staff member, action and date."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from wallet_project.admin_helpers import ReadOnlyAdminMixin, admin_link
from wallet_project.replicas.admin import ReplicaChangelistMixin
from wallets.models import StaffAction


@admin.register(StaffAction)
class StaffActionAdmin(ReplicaChangelistMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who did what to which wallet, balance, rate or payment, and why; written only with the action itself."""

    list_display = ("created_at", "staff", "action", "target_link", "reason")
    list_filter = ("action", ("staff", admin.RelatedOnlyFieldListFilter), "created_at")
    list_select_related = ("staff", "target_type")
    search_fields = ("reason", "target_id", "target_repr", "staff__email")
    search_help_text = "Reason, target id or name, or staff email."
    date_hierarchy = "created_at"
    fields = ("id", "created_at", "staff", "action", "target_link", "reason", "details")
    readonly_fields = fields
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[StaffAction]:
        return super().get_queryset(request).select_related("staff", "target_type")

    @admin.display(description="target")
    def target_link(self, staff_action: StaffAction) -> str:
        model = staff_action.target_type.model_class()
        if model is None:
            return staff_action.target_repr
        return admin_link(model, staff_action.target_id, staff_action.target_repr)
