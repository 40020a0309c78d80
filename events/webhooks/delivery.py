"""Sending the deliveries: claim the due ones, POST each with no database transaction open, record the attempt.

* **Claim** (one short transaction): due pending deliveries of enabled endpoints, `FOR UPDATE SKIP LOCKED`, get
  `leased_until` = now + LEASE. Until then no other worker takes them; a worker killed mid-delivery leaves them
  to be taken again once the lease has run out (at least once).
* **Send** (no transaction, in threads): the event rendered once (`render_event`), serialized once, and those
  bytes both signed and sent. The host is resolved and checked here, and the connection made to the checked
  address (`addresses.delivery_target`). The whole exchange ends by the timeout (`transport`), redirects are
  not followed, and at most 4 KB of the answer is read.
* **Record** (one short transaction per delivery): only while the lease is still this worker's. A 2xx
  delivers; anything else is retried on RETRY_SCHEDULE (±10 %), then `failed`. An endpoint whose attempts have
  all failed for DISABLE_AFTER is disabled.

Deliveries are neither ordered nor exactly once: a receiver deduplicates by `webhook-id`, the event's id.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from events.feed import render_events
from events.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.webhooks import addresses, signing
from events.webhooks.transport import DeadlineTransport

logger = logging.getLogger("wallet.webhooks")

# After the first attempt fails: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h more, each ±10 %.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
JITTER = 0.10
# Longer than one round of sends takes (resolution, connection, the answer's timeout): a live worker always
# records before its lease runs out, and a dead one's deliveries wait no longer than this.
LEASE = timedelta(seconds=60)
# An endpoint whose every attempt has failed for this long is disabled.
DISABLE_AFTER = timedelta(days=3)
DISABLED_AFTER_FAILURES = "Disabled automatically: every delivery attempt failed for 3 days."
MAX_RESPONSE_BYTES = 4096
MAX_ERROR_LENGTH = 500
USER_AGENT = "wallet-webhooks/1.0"
_JITTER_RANDOM = secrets.SystemRandom()


@dataclass(frozen=True)
class Outbound:
    """One claimed delivery, ready to send: everything it needs, so sending touches no database."""

    delivery_id: UUID
    leased_until: datetime
    url: str
    message_id: str
    body: bytes
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    attempted_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str = ""
    response_body: str = field(default="", repr=False)

    @property
    def delivered(self) -> bool:
        return not self.error and self.status_code is not None and 200 <= self.status_code < 300


def deliveries_claim(*, limit: int, due_before: datetime | None = None) -> list[Outbound]:
    """Lease up to `limit` due deliveries of enabled endpoints to this worker, and prepare their POSTs."""
    now = timezone.now()
    leased_until = now + LEASE
    with transaction.atomic():
        claimed = list(
            WebhookDelivery.objects.filter(
                status=DeliveryStatus.PENDING,
                next_attempt_at__lte=due_before or now,
                endpoint__is_enabled=True,
            )
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
            .order_by("next_attempt_at")
            .select_for_update(skip_locked=True, no_key=True, of=("self",))
            .values_list("pk", flat=True)[:limit]
        )
        if not claimed:
            return []
        WebhookDelivery.objects.filter(pk__in=claimed).update(leased_until=leased_until)
    deliveries = list(WebhookDelivery.objects.filter(pk__in=claimed).select_related("event", "endpoint"))
    bodies = [_serialized(rendered) for rendered in render_events([delivery.event for delivery in deliveries])]
    return [
        Outbound(
            delivery_id=delivery.pk,
            leased_until=leased_until,
            url=delivery.endpoint.url,
            message_id=str(delivery.event_id),
            body=body,
            keys=tuple(signing.signing_secrets(delivery.endpoint, now=now)),
        )
        for delivery, body in zip(deliveries, bodies, strict=True)
    ]


def post(outbound: Outbound) -> Outcome:
    """POST one delivery and say how it went; never raises (a worker must outlive any receiver)."""
    attempted_at = timezone.now()
    started = time.monotonic()
    timeout = float(settings.WEBHOOKS_TIMEOUT_SECONDS)
    status_code: int | None = None
    answer = ""
    error = ""
    try:
        status_code, answer = _send(outbound, attempted_at=attempted_at, deadline=started + timeout)
        if 300 <= status_code < 400:
            error = "Redirects are not followed: answer 2xx from the registered URL."
    except addresses.RefusedUrl as exc:
        error = f"Refused: {exc}"
    except httpx.TimeoutException:
        error = f"No answer within {timeout:g} s."
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception:  # recorded as a failed attempt and retried: one receiver never ends the worker
        logger.exception("webhook delivery crashed", extra={"delivery_id": str(outbound.delivery_id)})
        error = "Internal error while sending; it will be retried."
    return Outcome(
        attempted_at=attempted_at,
        duration_ms=round((time.monotonic() - started) * 1000),
        status_code=status_code,
        error=error[:MAX_ERROR_LENGTH],
        response_body=answer,
    )


def delivery_record(*, outbound: Outbound, outcome: Outcome) -> bool:
    """Record an attempt and what follows from it, if the delivery is still leased to this worker (not taken
    over after its lease ran out, redelivered or deleted meanwhile); whether it was."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(no_key=True)
            .filter(pk=outbound.delivery_id, status=DeliveryStatus.PENDING, leased_until=outbound.leased_until)
            .first()
        )
        if delivery is None:
            return False
        delivery.attempt_count += 1
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempt_count,
            attempted_at=outcome.attempted_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error=outcome.error,
            response_body=outcome.response_body,
        )
        delivery.leased_until = None
        if outcome.delivered:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                DeliveryStatus.DELIVERED,
                outcome.attempted_at,
                None,
            )
        else:
            delay = retry_delay(delivery.attempt_count)
            if delay is None:
                delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
            else:
                delivery.next_attempt_at = timezone.now() + delay
        delivery.save(update_fields=["attempt_count", "leased_until", "status", "delivered_at", "next_attempt_at"])
    # After the commit, in statements of their own: a transaction that holds a delivery's lock never waits for
    # its endpoint's row (which deleting an endpoint locks before its deliveries), so the two cannot deadlock.
    _endpoint_health(delivery.endpoint_id, delivered=outcome.delivered, at=outcome.attempted_at)
    _log(outbound, outcome, delivery)
    return True


def retry_delay(attempts: int) -> timedelta | None:
    """How long after its `attempts`-th failed attempt a delivery is tried again; None when no retry is left."""
    if attempts > len(RETRY_SCHEDULE):
        return None
    return RETRY_SCHEDULE[attempts - 1] * _JITTER_RANDOM.uniform(1 - JITTER, 1 + JITTER)


def deliver_due(*, limit: int, executor: Executor, due_before: datetime | None = None) -> int:
    """Claim up to `limit` due deliveries, send them side by side on `executor`, record each; how many."""
    claimed = deliveries_claim(limit=limit, due_before=due_before)
    for outbound, outcome in zip(claimed, executor.map(post, claimed), strict=True):
        delivery_record(outbound=outbound, outcome=outcome)
    return len(claimed)


def _endpoint_health(endpoint_id: UUID, *, delivered: bool, at: datetime) -> None:
    """A success clears the endpoint's failures; a failure starts them, or disables the endpoint once every
    attempt has failed for DISABLE_AFTER."""
    if delivered:
        WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=False).update(failing_since=None)
        return
    WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(failing_since=at)
    disabled = WebhookEndpoint.objects.filter(
        pk=endpoint_id, is_enabled=True, failing_since__lte=at - DISABLE_AFTER
    ).update(is_enabled=False, disabled_reason=DISABLED_AFTER_FAILURES)
    if disabled:
        logger.warning("webhook endpoint disabled after failing", extra={"endpoint_id": str(endpoint_id)})


def _send(outbound: Outbound, *, attempted_at: datetime, deadline: float) -> tuple[int, str]:
    target = addresses.delivery_target(outbound.url)
    headers = {
        **signing.headers(
            message_id=outbound.message_id, timestamp=attempted_at, body=outbound.body, keys=outbound.keys
        ),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        # The name, not the address the URL now holds; and no compressed answer (only its start is read).
        "Host": target.host_header,
        "Accept-Encoding": "identity",
    }
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    timeout = httpx.Timeout(
        float(settings.WEBHOOKS_TIMEOUT_SECONDS), connect=float(settings.WEBHOOKS_CONNECT_TIMEOUT_SECONDS)
    )
    # A client and a connection per POST, all of it by `deadline` (DeadlineTransport): a pooled connection,
    # opened for one name, must not carry another name's request. trust_env off: no proxy from the environment
    # stands between the checked address and the connection.
    with (
        httpx.Client(
            transport=DeadlineTransport(deadline=deadline), timeout=timeout, follow_redirects=False, trust_env=False
        ) as client,
        client.stream("POST", target.url, content=outbound.body, headers=headers, extensions=extensions) as response,
    ):
        return response.status_code, _start_of(response)


def _start_of(response: httpx.Response) -> str:
    """Up to MAX_RESPONSE_BYTES of the answer's body, as sent (not inflated); what came before the deadline if
    the body is slower (the status, which decides, was in time)."""
    received = bytearray()
    try:
        for chunk in response.iter_raw(chunk_size=1024):
            received += chunk
            if len(received) >= MAX_RESPONSE_BYTES:
                break
    except httpx.TimeoutException:
        pass
    return bytes(received[:MAX_RESPONSE_BYTES]).decode("utf-8", errors="replace")


def _serialized(rendered: dict) -> bytes:
    return json.dumps(rendered, separators=(",", ":")).encode("utf-8")


def _log(outbound: Outbound, outcome: Outcome, delivery: WebhookDelivery) -> None:
    extra = {
        "delivery_id": str(outbound.delivery_id),
        "event_id": outbound.message_id,
        "attempt": delivery.attempt_count,
        "status_code": outcome.status_code,
        "duration_ms": outcome.duration_ms,
        "delivery_status": delivery.status,
    }
    if outcome.delivered:
        logger.info("webhook delivered", extra=extra)
    else:
        logger.warning("webhook attempt failed", extra={**extra, "error": outcome.error})
