"""The holds' input and output shapes (issue #16's contract, API.md "Additions")."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from loyalty.serializers import EarnedSerializer
from transactions.holds.services import DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN, MIN_EXPIRES_IN
from transactions.models import HoldStatus
from transactions.serializers import TransactionOutputSerializer
from wallet_project.fields import (
    AmountField,
    CurrencyCodeTextField,
    DecimalTextField,
    QuerySerializer,
    StrictCharField,
    StrictUUIDField,
)
from wallet_project.quick_input import QuickSerializer


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: not a string, a float or a boolean (DRF's IntegerField takes "60", 60.0 and true)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class HoldCreateInputSerializer(QuickSerializer):
    """A hold on one of your balances: `amount` in its currency is reserved until captured, voided or expired."""

    wallet_balance_id = StrictUUIDField(help_text="One of your balances.")
    amount = AmountField()
    description = StrictCharField(max_length=255, required=False, allow_blank=True, default="")
    merchant = StrictCharField(
        max_length=255, required=False, allow_blank=True, default="", help_text="Who will be paid; kept on captures."
    )
    expires_in = StrictIntegerField(
        min_value=MIN_EXPIRES_IN,
        max_value=MAX_EXPIRES_IN,
        required=False,
        default=DEFAULT_EXPIRES_IN,
        help_text="Seconds until the hold expires by itself: 60 to 2,592,000 (30 days); 604,800 (7 days) by default.",
    )


class HoldCaptureInputSerializer(QuickSerializer):
    """A capture; without `amount` (or with null), what remains of the hold is captured."""

    amount = AmountField(required=False, allow_null=True, default=None)
    final = serializers.BooleanField(
        required=False,
        default=True,
        help_text="True (the default): the rest is released and the hold is `captured`. False: the rest stays "
        "reserved for later captures.",
    )

    def to_internal_value(self, data: Any) -> Any:
        # DRF's BooleanField takes "yes", 1 and "true"; the contract's field is a JSON boolean.
        if isinstance(data, dict) and "final" in data and not isinstance(data["final"], bool):
            raise serializers.ValidationError({"final": ["Must be true or false."]})
        return super().to_internal_value(data)


class HoldQuerySerializer(QuerySerializer):
    status = serializers.ChoiceField(choices=HoldStatus.choices, required=False, help_text="Only holds in this status.")
    wallet_balance_id = StrictUUIDField(required=False, help_text="Only this balance's holds.")


class HoldOutputSerializer(serializers.Serializer):
    """A hold. `status`, `remaining` and `resolved_at` are as of now: a hold past its expiry is `expired`, reserves
    nothing, and was resolved at its `expires_at`, whether or not the sweeper has marked it yet."""

    id = serializers.UUIDField()
    wallet_balance_id = serializers.UUIDField()
    currency = CurrencyCodeTextField()
    amount = DecimalTextField(help_text="What was reserved, a decimal string.")
    captured_amount = DecimalTextField(help_text="What its captures have booked so far.")
    remaining = DecimalTextField(help_text="What it still reserves now: 0 once resolved or past expiry.")
    status = serializers.ChoiceField(choices=HoldStatus.choices)
    description = serializers.CharField()
    merchant = serializers.CharField()
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    entries = TransactionOutputSerializer(many=True, help_text="The CAPTURE entries booked from this hold.")


class CaptureOutputSerializer(serializers.Serializer):
    hold = HoldOutputSerializer()
    entry = TransactionOutputSerializer(help_text="The CAPTURE entry this capture booked.")
    loyalty = EarnedSerializer(
        allow_null=True,
        help_text="The cashback this capture earned, as a payment does (`pending` until booked); null when none.",
    )
