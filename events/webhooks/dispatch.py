"""Fan-out: the outbox's events not yet dispatched become one delivery per (event, endpoint that receives it).

Several workers may run this at once: each takes a batch of undispatched events with `FOR UPDATE SKIP
LOCKED`, so a batch is one worker's alone, and writes its deliveries and marks it dispatched in the same
transaction — an event is turned into deliveries once, or (if the worker dies first) not yet. The unique
(event, endpoint) makes a second fan-out of the same event harmless anyway.

An endpoint receives the events of its user's stream written after it was created (the staff's stream has no
webhooks), if it is enabled and subscribed to the type when the event is dispatched.
"""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from events.models import Event, WebhookDelivery, WebhookEndpoint
from events.webhooks import subscriptions

BATCH = 500


def events_dispatch(*, limit: int = BATCH) -> int:
    """Turn up to `limit` undispatched events into deliveries and mark them dispatched; how many events."""
    with transaction.atomic():
        events = list(
            Event.objects.filter(dispatched_at__isnull=True)
            .order_by("id")  # the partial index `event_not_dispatched`
            .select_for_update(skip_locked=True, no_key=True)
            .only("id", "user_id", "type", "created_at")[:limit]
        )
        if not events:
            return 0
        now = timezone.now()
        endpoints = _enabled_endpoints({event.user_id for event in events if event.user_id is not None})
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(event_id=event.pk, endpoint_id=endpoint.pk, next_attempt_at=now)
                for event in events
                for endpoint in endpoints.get(event.user_id, ())
                if endpoint.created_at <= event.created_at and subscriptions.receives(endpoint.event_types, event.type)
            ],
            ignore_conflicts=True,
        )
        Event.objects.filter(pk__in=[event.pk for event in events]).update(dispatched_at=now)
    return len(events)


def _enabled_endpoints(user_ids: set[UUID]) -> dict[UUID, list[WebhookEndpoint]]:
    found: dict[UUID, list[WebhookEndpoint]] = defaultdict(list)
    if user_ids:
        for endpoint in WebhookEndpoint.objects.filter(user_id__in=user_ids, is_enabled=True).only(
            "id", "user_id", "event_types", "created_at"
        ):
            found[endpoint.user_id].append(endpoint)
    return found
