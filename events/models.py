"""The outbox: one row per change that a user (or the back office) is told about, written in the change's own
database transaction."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from wallet_project.db import ClockTimestamp
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
            models.Index(fields=["type", "-created_at"], name="event_type_created"),
        ]
        constraints = [
            # The feed's order, and the proof of no gap and no duplicate: one event per (stream, sequence).
            models.UniqueConstraint(fields=["stream_id", "sequence"], name="event_sequence_unique_per_stream"),
            models.CheckConstraint(condition=Q(sequence__gte=1), name="event_sequence_positive"),
            models.CheckConstraint(condition=Q(type__in=EventType.values), name="event_type_known"),
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
