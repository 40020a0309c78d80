"""The webhooks in the back office: endpoints and deliveries, read-only, and "redeliver now" on deliveries.

Secrets are never shown. The changelists load each row's endpoint, user and event in the page's one query
(the event's `data` left out), and count no more than the page needs.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.models import User
from events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.webhooks.services import webhook_deliveries_redeliver
from wallet_project.admin_helpers import ReadOnlyAdminMixin, admin_changelist_url, admin_link, uuid_or_none
from wallet_project.replicas.admin import ReplicaChangelistMixin


class OneIdFilter(admin.SimpleListFilter):
    """A filter on one id that arrives by link (`?endpoint=…`): shown only while it is applied."""

    field: str

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        raw = self.value()
        if raw is None:
            return []
        return [(raw, raw if uuid_or_none(raw) is not None else f"{raw} (not an id)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        raw = self.value()
        if raw is None:
            return queryset
        some_id = uuid_or_none(raw)
        return queryset.none() if some_id is None else queryset.filter(**{self.field: some_id})


class EndpointFilter(OneIdFilter):
    title = "endpoint"
    parameter_name = "endpoint"
    field = "endpoint_id"


class UserFilter(OneIdFilter):
    title = "user"
    parameter_name = "user"
    field = "user_id"


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReplicaChangelistMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("url", "user_link", "is_enabled", "disabled_reason", "failing_since", "created_at")
    list_filter = (UserFilter, "is_enabled")
    list_select_related = ("user",)
    search_fields = ("url", "user__email")
    search_help_text = "URL or owner email; or an endpoint id or owner id."
    show_full_result_count = False
    ordering = ("-created_at", "-id")
    fields = (
        "id",
        "user_link",
        "url",
        "description",
        "event_types",
        "is_enabled",
        "disabled_reason",
        "failing_since",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
        "deliveries_link",
    )
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint], search_term: str
    ) -> tuple[QuerySet[WebhookEndpoint], bool]:
        some_id = uuid_or_none(search_term)
        if some_id is not None:
            return queryset.filter(pk=some_id) | queryset.filter(user_id=some_id), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="user", ordering="user__email")
    def user_link(self, endpoint: WebhookEndpoint) -> str:
        return admin_link(User, endpoint.user_id, endpoint.user.email)

    @admin.display(description="deliveries")
    def deliveries_link(self, endpoint: WebhookEndpoint) -> str:
        return format_html('<a href="{}">Deliveries</a>', admin_changelist_url(WebhookDelivery, endpoint=endpoint.pk))


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "attempted_at", "status_code", "duration_ms", "error", "response_body")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("number",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReplicaChangelistMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "short_id",
        "created_at",
        "event_type",
        "endpoint_link",
        "owner",
        "status",
        "attempt_count",
        "next_attempt_at",
        "leased_until",
    )
    list_filter = (EndpointFilter, "status")
    search_fields = ("endpoint__url",)
    search_help_text = "A delivery id, an event id, or part of an endpoint's URL."
    show_full_result_count = False
    list_per_page = 100
    # Delivery ids are time-ordered: the primary key's index gives the newest first without a sort.
    ordering = ("-id",)
    actions = ["redeliver_now"]
    fields = (
        "id",
        "event_link",
        "event_type",
        "endpoint_link",
        "owner",
        "status",
        "attempt_count",
        "next_attempt_at",
        "leased_until",
        "created_at",
        "delivered_at",
    )
    readonly_fields = fields
    inlines = [WebhookAttemptInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return super().get_queryset(request).select_related("event", "endpoint__user").defer("event__data")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[WebhookDelivery], search_term: str
    ) -> tuple[QuerySet[WebhookDelivery], bool]:
        some_id = uuid_or_none(search_term)
        if some_id is not None:
            return queryset.filter(pk=some_id) | queryset.filter(event_id=some_id), False
        return super().get_search_results(request, queryset, search_term)

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("events.redeliver_webhookdelivery")

    @admin.action(description="Redeliver now", permissions=["redeliver"])
    def redeliver_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        delivery_ids: list[UUID] = list(queryset.values_list("pk", flat=True))
        count = webhook_deliveries_redeliver(delivery_ids=delivery_ids)
        waiting = WebhookDelivery.objects.filter(pk__in=delivery_ids, endpoint__is_enabled=False).count()
        self.message_user(request, f"{count} delivery(ies) will be sent again now.", messages.SUCCESS)
        if waiting:
            self.message_user(
                request,
                f"{waiting} of them belong to disabled endpoints: they wait until their endpoint is enabled.",
                messages.WARNING,
            )

    @admin.display(description="delivery", ordering="id")
    def short_id(self, delivery: WebhookDelivery) -> str:
        return "…" + str(delivery.pk)[-8:]

    @admin.display(description="event type", ordering="event__type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.display(description="event")
    def event_link(self, delivery: WebhookDelivery) -> str:
        return admin_link(Event, delivery.event_id, delivery.event_id)

    @admin.display(description="endpoint")
    def endpoint_link(self, delivery: WebhookDelivery) -> str:
        return admin_link(WebhookEndpoint, delivery.endpoint_id, delivery.endpoint.url)

    @admin.display(description="owner")
    def owner(self, delivery: WebhookDelivery) -> str:
        return admin_link(User, delivery.endpoint.user_id, delivery.endpoint.user.email)
