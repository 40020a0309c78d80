"""The events app in the back office: the outbox's events (read-only), and the webhooks (events/webhooks)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from events.models import Event
from events.webhooks.admin import OneIdFilter, WebhookDeliveryAdmin, WebhookEndpointAdmin
from wallet_project.admin_helpers import ReadOnlyAdminMixin, admin_link, uuid_or_none
from wallet_project.replicas.admin import ReplicaChangelistMixin

__all__ = ["EventAdmin", "WebhookDeliveryAdmin", "WebhookEndpointAdmin"]


class StreamFilter(OneIdFilter):
    # A user's stream has the user's id: the (stream, sequence) index serves it.
    title = "user"
    parameter_name = "user"
    field = "stream_id"


@admin.register(Event)
class EventAdmin(ReplicaChangelistMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "type", "user_link", "sequence", "dispatched_at")
    list_filter = (StreamFilter, "type")
    list_select_related = ("user",)
    search_fields = ("user__email",)
    search_help_text = "A user's email (exact), an event id or a user id."
    show_full_result_count = False
    list_per_page = 100
    # Event ids are time-ordered: the primary key's index gives the newest first without a sort.
    ordering = ("-id",)
    fields = ("id", "type", "user_link", "stream_id", "sequence", "created_at", "reference", "data", "dispatched_at")
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Event], search_term: str
    ) -> tuple[QuerySet[Event], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        some_id = uuid_or_none(term)
        if some_id is not None:
            return queryset.filter(pk=some_id) | queryset.filter(stream_id=some_id), False
        # The user first (by the unique email), then their stream: no scan of the events for a text match.
        user_ids = list(User.objects.filter(email__iexact=term).values_list("pk", flat=True))
        return queryset.filter(stream_id__in=user_ids), False

    @admin.display(description="user")
    def user_link(self, event: Event) -> str:
        return admin_link(User, event.user_id, event.user.email) if event.user_id else "staff"
