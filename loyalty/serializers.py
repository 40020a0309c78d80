"""The loyalty API's shapes: the summary per currency, the rewards, and a payment's `loyalty`.

The answers are written out by hand (`loyalty.rendering`); these serializers
document them (OpenAPI) and validate the list's filters.
"""

from __future__ import annotations

from rest_framework import serializers

from loyalty.models import RewardStatus
from wallet_project.fields import CurrencyCodeFilterField, CurrencyCodeTextField, DecimalTextField, QuerySerializer

_AMOUNT = {"help_text": "A decimal string with the currency's minor unit."}


class ProgramRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class EarnedSerializer(serializers.Serializer):
    """The cashback a payment (or capture) earned: `pending` in its answer, booked by the worker within seconds."""

    amount = DecimalTextField(**_AMOUNT)
    program = ProgramRefSerializer()
    status = serializers.ChoiceField(choices=[RewardStatus.PENDING.value])


class LoyaltySummarySerializer(serializers.Serializer):
    """Your cashback in one currency."""

    currency = CurrencyCodeTextField()
    earned = DecimalTextField(help_text="Earned on your payments: booked, or pending (booked within seconds).")
    reversed = DecimalTextField(help_text="Taken back by refunds, in proportion to what was refunded.")
    net = DecimalTextField(help_text="Earned less reversed: what you keep.")
    pending = DecimalTextField(help_text="Of `net`, what is not booked on your balance yet.")


class RewardOutputSerializer(serializers.Serializer):
    """The cashback one payment (or one capture of a hold) earned."""

    id = serializers.UUIDField()
    payment_id = serializers.UUIDField(help_text="The PAYMENT or CAPTURE entry that earned it.")
    reference = serializers.UUIDField(help_text="The payment's reference, shared by its LOYALTY entries.")
    wallet_balance_id = serializers.UUIDField()
    currency = CurrencyCodeTextField()
    amount = DecimalTextField(help_text="What the payment earned; it never changes.")
    reversed_amount = DecimalTextField(help_text="Taken back by refunds of the payment.")
    unreversed_amount = DecimalTextField(
        help_text="What refunds should have taken back but the balance no longer had available."
    )
    net_amount = DecimalTextField(help_text="`amount` less `reversed_amount`; 0 when unfunded.")
    status = serializers.ChoiceField(
        choices=RewardStatus.choices,
        help_text="`pending` until booked; `booked` (moved onto your balance); `unfunded` (the programme's funding "
        "could not cover it: nothing earned); `reversed` (refunded in full before it was booked).",
    )
    program = ProgramRefSerializer()
    created_at = serializers.DateTimeField()
    booked_at = serializers.DateTimeField(allow_null=True)


class RewardQuerySerializer(QuerySerializer):
    currency = CurrencyCodeFilterField(required=False, help_text="Only rewards in this currency (ISO 4217, e.g. USD).")
    status = serializers.ChoiceField(
        choices=RewardStatus.choices, required=False, help_text="Only rewards in this status."
    )
