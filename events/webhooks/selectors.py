"""The webhook endpoints' reads: a user's endpoints, one endpoint, an endpoint's deliveries with their attempts."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from django.db.models import Prefetch, QuerySet

from events.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from wallet_project.errors import NotFound

if TYPE_CHECKING:
    from accounts.models import User


def webhook_endpoint_list(*, user: User) -> QuerySet[WebhookEndpoint]:
    """The user's endpoints, oldest first."""
    return WebhookEndpoint.objects.filter(user=user).order_by("created_at", "id")


def webhook_endpoint_get(*, user: User, endpoint_id: UUID) -> WebhookEndpoint:
    """One of the user's endpoints; raises NotFound (also for another user's)."""
    endpoint = WebhookEndpoint.objects.filter(user=user, pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def webhook_delivery_list(*, user: User, endpoint_id: UUID, status: str | None = None) -> QuerySet[WebhookDelivery]:
    """The deliveries of one of the user's endpoints (newest first once paginated), each with its event's type
    and its attempts (one query more per page); raises NotFound."""
    if not WebhookEndpoint.objects.filter(user=user, pk=endpoint_id).exists():
        raise NotFound("No such webhook endpoint.")
    deliveries = WebhookDelivery.objects.filter(endpoint_id=endpoint_id)
    if status:
        deliveries = deliveries.filter(status=status)
    return (
        deliveries.select_related("event")
        .defer("event__data")
        .prefetch_related(
            Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number").defer("response_body"))
        )
    )
