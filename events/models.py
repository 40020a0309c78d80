"""The outbox: one row per change that a user (or the back office) is told about, written in the change's own
database transaction."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from wallet_project.db import ClockTimestamp  # also registers the `one_of` lookup
from wallet_project.ids import uuid7

# The stream of events only staff see (rate changes): not a user's.
STAFF_STREAM = uuid.UUID(int=0)


class EventType(models.TextChoices):
    MOVEMENT_CREATED = "movement.created", "Movement created"
    HOLD_CREATED = "hold.created", "Hold created"
    HOLD_CAPTURED = "hold.captured", "Hold captured"
    HOLD_VOIDED = "hold.voided", "Hold voided"
    HOLD_EXPIRED = "hold.expired", "Hold expired"
    WALLET_CREATED = "wallet.created", "Wallet created"
    WALLET_FROZEN = "wallet.frozen", "Wallet frozen"
    WALLET_UNFROZEN = "wallet.unfrozen", "Wallet unfrozen"
    BALANCE_CREATED = "balance.created", "Balance created"
    RATE_CHANGED = "rate.changed", "Rate changed"
    USER_MFA_ENABLED = "user.mfa_enabled", "Two-factor authentication turned on"
    USER_MFA_DISABLED = "user.mfa_disabled", "Two-factor authentication turned off"
    LOYALTY_UNFUNDED = "loyalty.unfunded", "Loyalty cashback unfunded"


class EventStream(models.Model):
    """The last `sequence` given in one stream (a user's, or the staff's): the counter that makes the events of a
    stream gapless. Its row is locked by the transaction that writes an event, until that transaction ends, so
    numbers are handed out in commit order and a rollback gives its number back."""

    id = models.UUIDField(primary_key=True)  # the user's id, or STAFF_STREAM
    last_sequence = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(last_sequence__gte=0), name="eventstream_sequence_non_negative")
        ]

    def __str__(self) -> str:
        return f"{self.id} at {self.last_sequence}"


class Event(models.Model):
    """Something that happened, told to the user it happened to (the events feed and their webhooks).

    `id` is also the webhook id; `sequence` numbers a stream's events 1, 2, 3 … with no gap. A
    `movement.created` event names its movement by `reference` and shows the entries it booked on
    the user's balances (immutable, so rendered when read); the others keep their object as it was
    (`data`). `dispatched_at` is when the webhook worker turned it into deliveries.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    stream_id = models.UUIDField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    sequence = models.BigIntegerField()
    type = models.CharField(max_length=32, choices=EventType.choices)
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    reference = models.UUIDField(null=True, blank=True)
    data = models.JSONField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["stream_id", "sequence"]
        indexes = [
            # The webhook worker's queue: events not yet turned into deliveries, oldest first.
            models.Index(fields=["id"], condition=Q(dispatched_at__isnull=True), name="event_not_dispatched"),
            # No index on type: no query of ours orders by it, and every movement writes two events. The admin's
            # filter by type reads the primary key backwards (newest first), as its list does.
        ]
        constraints = [
            # The feed's order, and the proof of no gap and no duplicate: one event per (stream, sequence).
            models.UniqueConstraint(fields=["stream_id", "sequence"], name="event_sequence_unique_per_stream"),
            models.CheckConstraint(condition=Q(sequence__gte=1), name="event_sequence_positive"),
            models.CheckConstraint(condition=Q(type__one_of=EventType.values), name="event_type_known"),
            models.CheckConstraint(
                condition=Q(type=EventType.MOVEMENT_CREATED, reference__isnull=False, data__isnull=True)
                | (~Q(type=EventType.MOVEMENT_CREATED) & Q(reference__isnull=True, data__isnull=False)),
                name="event_movement_by_reference_others_by_data",
            ),
            models.CheckConstraint(
                condition=Q(user__isnull=True, stream_id=STAFF_STREAM)
                | Q(user__isnull=False, stream_id=models.F("user")),
                name="event_stream_is_its_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.sequence}"


# --- Webhooks: where a user's events are POSTed, and each delivery's attempts ---------------------------------------


class WebhookEndpoint(models.Model):
    """A URL of a user's where the events of their stream are POSTed, signed as Standard Webhooks says.

    `event_types` holds the types it receives (`movement.created`), prefixes (`hold.*`) or `*`.
    `secret` signs every delivery; after a rotation `previous_secret` signs beside it until
    `previous_secret_expires_at`, so that a receiver can switch keys without refusing a delivery.
    `failing_since` is the first failed attempt since the last success: an endpoint whose attempts
    have all failed for long enough is disabled, with `disabled_reason` saying so.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints", db_index=False
    )
    url = models.CharField(max_length=2048)
    description = models.CharField(max_length=255, blank=True, default="")
    event_types = models.JSONField(default=list)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    failing_since = models.DateTimeField(null=True, blank=True)
    # The database's clock, as the events': an endpoint receives the events written after it was created.
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["user", "created_at", "id"], name="webhookendpoint_user_created")]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_enabled=True, disabled_reason="") | (Q(is_enabled=False) & ~Q(disabled_reason="")),
                name="webhookendpoint_disabled_says_why",
            ),
            models.CheckConstraint(
                condition=Q(previous_secret="", previous_secret_expires_at__isnull=True)
                | (~Q(previous_secret="") & Q(previous_secret_expires_at__isnull=False)),
                name="webhookendpoint_previous_secret_expires",
            ),
        ]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event to send to one endpoint, until a receiver answers 2xx or the retries run out.

    `next_attempt_at` is when it is due (pending only). A worker that claims it sets `leased_until`;
    until then no other worker takes it, and after then (the worker died) any worker may.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+", db_index=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        permissions = [("redeliver_webhookdelivery", "Can redeliver a webhook delivery now")]
        indexes = [
            # An endpoint's deliveries, newest first (the API's list and the admin's link).
            models.Index(fields=["endpoint", "-created_at", "-id"], name="webhookdelivery_endpoint"),
            # The workers' queue: what is pending, by when it is due.
            models.Index(
                fields=["next_attempt_at"], condition=Q(status=DeliveryStatus.PENDING), name="webhookdelivery_due"
            ),
            # The dashboard's count of deliveries whose retries ran out, newest first: those rows alone.
            models.Index(
                fields=["-created_at"], condition=Q(status=DeliveryStatus.FAILED), name="webhookdelivery_failed"
            ),
        ]
        constraints = [
            # At least once, and only once in normal operation: one delivery per (event, endpoint).
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhookdelivery_once_per_endpoint"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="webhookdelivery_status_known"),
            models.CheckConstraint(
                condition=Q(status=DeliveryStatus.PENDING, next_attempt_at__isnull=False)
                | (~Q(status=DeliveryStatus.PENDING) & Q(next_attempt_at__isnull=True)),
                name="webhookdelivery_pending_is_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} to {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: what the receiver answered (`status_code`, the start of its body), or why
    there was no answer (`error`), and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    response_body = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhookattempt_number_unique"),
            models.CheckConstraint(condition=Q(number__gte=1), name="webhookattempt_number_positive"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}"
