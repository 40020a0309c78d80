"""The webhook endpoints' writes: register, change, rotate the secret, delete; and the back office's redelivery."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.selectors import actor_ensure_active
from events.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from events.webhooks import addresses, signing, subscriptions
from wallet_project.errors import InactiveAccount, InvalidInput, NotFound, TooManyWebhookEndpoints

if TYPE_CHECKING:
    from accounts.models import User

MAX_ENDPOINTS_PER_USER = 16
DISABLED_BY_OWNER = "Disabled by its owner."


def webhook_endpoint_create(
    *, user: User, url: str, event_types: Iterable[str], description: str = ""
) -> WebhookEndpoint:
    """Register an endpoint with a new secret; raises InvalidInput (the URL), InactiveAccount,
    TooManyWebhookEndpoints."""
    url = _checked_url(url)
    with transaction.atomic():
        _lock_active_user(user)
        if WebhookEndpoint.objects.filter(user=user).count() >= MAX_ENDPOINTS_PER_USER:
            raise TooManyWebhookEndpoints(
                f"A user may have at most {MAX_ENDPOINTS_PER_USER} webhook endpoints; delete one first.",
                details={"limit": MAX_ENDPOINTS_PER_USER},
            )
        return WebhookEndpoint.objects.create(
            user=user,
            url=url,
            event_types=subscriptions.normalized(event_types),
            description=description,
            secret=signing.new_secret(),
        )


def webhook_endpoint_update(
    *,
    user: User,
    endpoint_id: UUID,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    description: str | None = None,
    is_enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given (None leaves a field as it is); raises NotFound, InvalidInput (the URL), InactiveAccount.

    Enabling a disabled endpoint clears why it was disabled and its failures: its pending deliveries resume."""
    actor_ensure_active(actor=user)
    if url is not None:
        url = _checked_url(url)
    with transaction.atomic():
        endpoint = _locked_endpoint(user=user, endpoint_id=endpoint_id)
        if url is not None:
            endpoint.url = url
        if event_types is not None:
            endpoint.event_types = subscriptions.normalized(event_types)
        if description is not None:
            endpoint.description = description
        if is_enabled is True and not endpoint.is_enabled:
            endpoint.is_enabled, endpoint.disabled_reason, endpoint.failing_since = True, "", None
        elif is_enabled is False and endpoint.is_enabled:
            endpoint.is_enabled, endpoint.disabled_reason = False, DISABLED_BY_OWNER
        endpoint.save()
    return endpoint


def webhook_endpoint_rotate_secret(*, user: User, endpoint_id: UUID) -> WebhookEndpoint:
    """Give the endpoint a new secret; the current one keeps signing beside it for a day. Raises NotFound,
    InactiveAccount."""
    actor_ensure_active(actor=user)
    with transaction.atomic():
        endpoint = _locked_endpoint(user=user, endpoint_id=endpoint_id)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + signing.PREVIOUS_SECRET_LIFETIME
        endpoint.secret = signing.new_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return endpoint


def webhook_endpoint_delete(*, user: User, endpoint_id: UUID) -> None:
    """Delete the endpoint with its deliveries and their attempts; raises NotFound, InactiveAccount."""
    actor_ensure_active(actor=user)
    with transaction.atomic():
        # The endpoint's row first, FOR UPDATE: a fan-out writing deliveries for it (which holds its key) is
        # waited for and its deliveries deleted too, and later ones wait for the commit and then find it gone.
        # Then its deliveries: a worker recording an attempt holds its delivery's row, so none can add an
        # attempt that the deletion would not see.
        endpoint = WebhookEndpoint.objects.select_for_update().filter(user=user, pk=endpoint_id).first()
        if endpoint is None:
            raise NotFound("No such webhook endpoint.")
        list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("pk").select_for_update().values_list("pk"))
        endpoint.delete()


def webhook_deliveries_redeliver(*, delivery_ids: Iterable[UUID]) -> int:
    """Make the deliveries pending and due now (the back office's "redeliver now"); how many there were.

    Each is attempted once more at once; a failure then follows the retry schedule from its attempt count.
    Those of a disabled endpoint wait until it is enabled again."""
    return WebhookDelivery.objects.filter(pk__in=list(delivery_ids)).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), leased_until=None
    )


def _checked_url(url: str) -> str:
    try:
        return addresses.registrable_url(url)
    except addresses.RefusedUrl as exc:
        raise InvalidInput(str(exc), details={"url": [str(exc)]}) from exc


def _lock_active_user(user: User) -> None:
    """Lock the user's row until the commit: one user's endpoint registrations run one at a time, so the limit
    holds under concurrent requests. Raises InactiveAccount for a deactivated (or deleted) user."""
    users = get_user_model().objects.select_for_update(no_key=True)
    if not users.filter(pk=user.pk, is_active=True).values_list("pk", flat=True).first():
        raise InactiveAccount()


def _locked_endpoint(*, user: User, endpoint_id: UUID) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).filter(user=user, pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint
