"""The webhook endpoints' input and output shapes, and their renderings (written out by hand, as the ledger's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.webhooks import addresses, subscriptions
from wallet_project.fields import QuerySerializer, StrictCharField

_TIMESTAMP = serializers.DateTimeField()
MAX_EVENT_TYPES = 32
SECRET_PATTERN = r"^whsec_[A-Za-z0-9+/]{40,}={0,2}$"


@extend_schema_field({"type": "string", "format": "uri", "pattern": "^https://", "maxLength": addresses.MAX_URL_LENGTH})
class WebhookUrlField(StrictCharField):
    """An https URL; whether its host may be called is the service's to say (it resolves the name)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=addresses.MAX_URL_LENGTH, **kwargs)


class EventTypeChoiceField(serializers.ChoiceField):
    default_error_messages = {"staff_only": "{input} is for staff only: it is not sent to webhooks."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=subscriptions.CHOICES, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            # A list or an object is no choice; asking whether it is staff-only would not even be a question.
            self.fail("invalid_choice", input=data)
        if data in subscriptions.STAFF_ONLY:
            self.fail("staff_only", input=data)
        return super().to_internal_value(data)


def _event_types_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=EventTypeChoiceField(),
        allow_empty=False,
        min_length=1,
        max_length=MAX_EVENT_TYPES,
        help_text="The events this endpoint receives: types (`movement.created`), every type of a family "
        "(`hold.*`), or `*` for all of them. `rate.changed` is for staff only.",
        **kwargs,
    )


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean only (DRF's BooleanField also takes "yes", 1 and "true")."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class WebhookEndpointCreateInputSerializer(serializers.Serializer):
    url = WebhookUrlField(
        help_text="Where the events are POSTed: https, on a host that resolves only to public addresses."
    )
    event_types = _event_types_field()
    description = StrictCharField(max_length=255, required=False, allow_blank=True, default="")


class WebhookEndpointUpdateInputSerializer(serializers.Serializer):
    """Only the fields sent change."""

    url = WebhookUrlField(required=False)
    event_types = _event_types_field(required=False)
    description = StrictCharField(max_length=255, required=False, allow_blank=True)
    is_enabled = StrictBooleanField(
        required=False,
        help_text="False stops deliveries (the pending ones wait); true resumes them, also after an automatic "
        "disabling.",
    )


class WebhookDeliveryQuerySerializer(QuerySerializer):
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)


class WebhookEndpointOutputSerializer(serializers.Serializer):
    """A webhook endpoint. Its secret is shown only when it is made: by the creation and by a rotation."""

    id = serializers.UUIDField()
    url = serializers.CharField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=subscriptions.CHOICES))
    is_enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(
        allow_null=True, help_text="Why the endpoint is disabled: by its owner, or after 3 days of failures."
    )
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Until when the secret replaced by the last rotation still signs, beside the new."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookEndpointWithSecretOutputSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.RegexField(
        SECRET_PATTERN,
        help_text="The signing secret (Standard Webhooks: `whsec_` and base64). Shown this once: keep it.",
    )


class WebhookAttemptOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField(min_value=1)
    attempted_at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True, help_text="The receiver's status code, if it answered.")
    duration_ms = serializers.IntegerField(min_value=0)
    error = serializers.CharField(allow_null=True, help_text="Why the attempt failed without an answer, if it did.")


class WebhookDeliveryOutputSerializer(serializers.Serializer):
    """One event sent to one endpoint: delivered (a 2xx), pending (a retry is due at `next_attempt_at`), or
    failed (no retry left)."""

    id = serializers.UUIDField()
    event_id = serializers.UUIDField(help_text="The event, also sent as the `webhook-id` header.")
    event_type = serializers.ChoiceField(choices=EventType.choices)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    attempts = WebhookAttemptOutputSerializer(many=True)


def endpoint_representation(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    rendered = {
        "id": str(endpoint.pk),
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "is_enabled": endpoint.is_enabled,
        "disabled_reason": endpoint.disabled_reason or None,
        "previous_secret_expires_at": _timestamp(endpoint.previous_secret_expires_at),
        "created_at": _timestamp(endpoint.created_at),
        "updated_at": _timestamp(endpoint.updated_at),
    }
    if with_secret:
        rendered["secret"] = endpoint.secret
    return rendered


def deliveries_representation(deliveries: Sequence[WebhookDelivery]) -> list[dict[str, Any]]:
    """Deliveries with their event's type and their attempts (select_related and prefetched)."""
    return [
        {
            "id": str(delivery.pk),
            "event_id": str(delivery.event_id),
            "event_type": delivery.event.type,
            "status": delivery.status,
            "next_attempt_at": _timestamp(delivery.next_attempt_at),
            "created_at": _timestamp(delivery.created_at),
            "delivered_at": _timestamp(delivery.delivered_at),
            "attempts": [_attempt(attempt) for attempt in delivery.attempts.all()],
        }
        for delivery in deliveries
    ]


def _attempt(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "attempted_at": _timestamp(attempt.attempted_at),
        "status_code": attempt.status_code,
        "duration_ms": attempt.duration_ms,
        "error": attempt.error or None,
    }


def _timestamp(value: Any) -> str | None:
    return None if value is None else _TIMESTAMP.to_representation(value)
