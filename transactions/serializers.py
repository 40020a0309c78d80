from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from loyalty.serializers import EarnedSerializer
from transactions.models import Transaction, TransactionType
from wallet_project.fields import AmountField
from wallet_project.money import format_amount
from wallet_project.quick_input import QuickSerializer
from wallets.selectors import minor_unit_of

_TIMESTAMP = serializers.DateTimeField()


class TransactionOutputSerializer(serializers.ModelSerializer):
    wallet_balance_id = serializers.UUIDField(read_only=True)
    wallet_id = serializers.UUIDField(read_only=True)
    currency = serializers.CharField(source="currency_id", read_only=True)
    amount = serializers.SerializerMethodField()
    balance_after = serializers.SerializerMethodField()
    related_wallet_balance_id = serializers.UUIDField(read_only=True, allow_null=True)
    exchange_rate = serializers.SerializerMethodField()

    class Meta:
        model = Transaction
        fields = [
            "id",
            "wallet_balance_id",
            "wallet_id",
            "currency",
            "type",
            "amount",
            "balance_after",
            "sequence",
            "related_wallet_balance_id",
            "exchange_rate",
            "reference",
            "source",
            "description",
            "merchant",
            "created_at",
        ]
        read_only_fields = fields

    def get_amount(self, entry: Transaction) -> str:
        return format_amount(entry.amount, minor_unit_of(entry.currency_id))

    def get_balance_after(self, entry: Transaction) -> str:
        return format_amount(entry.balance_after, minor_unit_of(entry.currency_id))

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_exchange_rate(self, entry: Transaction) -> str | None:
        return _rate_text(entry.exchange_rate)

    def to_representation(self, entry: Transaction) -> dict[str, Any]:
        """The declared fields, written out by hand (`entry_representation`)."""
        return entry_representation(entry)

    def generic_representation(self, entry: Transaction) -> dict[str, Any]:
        """DRF's own rendering of the declared fields (what `to_representation` must equal)."""
        return dict(super().to_representation(entry))


class PaymentOutputSerializer(TransactionOutputSerializer):
    """A payment's answer: its PAYMENT entry, and the cashback it earned (`transactions.views.render_payment`)."""

    type = serializers.ChoiceField(choices=[TransactionType.PAYMENT.value], read_only=True)
    loyalty = EarnedSerializer(
        allow_null=True,
        read_only=True,
        help_text="The cashback this payment earned, `pending` until booked; null when it earned none (no active "
        "programme in the currency, less than one minor unit, or an operator's payment).",
    )

    class Meta(TransactionOutputSerializer.Meta):
        fields = [*TransactionOutputSerializer.Meta.fields, "loyalty"]
        read_only_fields = fields


def _rate_text(rate: Decimal | None) -> str | None:
    return None if rate is None else format(rate.normalize(), "f")


def entry_representation(entry: Transaction) -> dict[str, Any]:
    """A ledger entry as `TransactionOutputSerializer` renders it, written out by hand.

    DRF's generic walk over the declared fields was 7 % of a transfer's Python
    time, and building a serializer instance to call this another 4 %
    (docs/PERFORMANCE.md, "Ledger entries rendered by hand"): the movement views
    call it directly. `tests` compare it with DRF's own rendering on every type of entry.
    """
    minor_unit = minor_unit_of(entry.currency_id)
    return {
        "id": str(entry.pk),
        "wallet_balance_id": str(entry.wallet_balance_id),
        "wallet_id": str(entry.wallet_id),
        "currency": entry.currency_id,
        "type": entry.type,
        "amount": format_amount(entry.amount, minor_unit),
        "balance_after": format_amount(entry.balance_after, minor_unit),
        "sequence": entry.sequence,
        "related_wallet_balance_id": (
            None if entry.related_wallet_balance_id is None else str(entry.related_wallet_balance_id)
        ),
        "exchange_rate": _rate_text(entry.exchange_rate),
        "reference": str(entry.reference),
        "source": entry.source,
        "description": entry.description,
        "merchant": entry.merchant,
        "created_at": _TIMESTAMP.to_representation(entry.created_at),
    }


class _MovementInputSerializer(QuickSerializer):
    amount = AmountField()
    description = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default="", help_text="Free text kept on the entry."
    )


class BalanceMovementInputSerializer(_MovementInputSerializer):
    """A deposit or a withdrawal: one of your balances and an amount in its currency."""

    wallet_balance_id = serializers.UUIDField(help_text="One of your balances.")


class PaymentInputSerializer(BalanceMovementInputSerializer):
    """A payment to a merchant from one of your balances."""

    merchant = serializers.CharField(max_length=255, help_text="Who is paid; kept on the entry.")


class TransferInputSerializer(_MovementInputSerializer):
    """A transfer: `amount` is in the source balance's currency."""

    from_wallet_balance_id = serializers.UUIDField(help_text="One of your balances: the one debited.")
    to_wallet_balance_id = serializers.UUIDField(help_text="Any balance, yours or another user's; not the source.")


class RefundInputSerializer(QuickSerializer):
    """A refund of a payment; without `amount` (or with null), what is left of the payment is refunded."""

    # Omitted or null: refund what is left (refund_create needs the argument either way).
    amount = AmountField(required=False, allow_null=True, default=None)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


@extend_schema_field(OpenApiTypes.DATETIME)
class DateOrDateTimeField(serializers.Field):
    """`2026-11-25` (midnight UTC) or an ISO 8601 datetime (UTC when it names no zone)."""

    default_error_messages = {"invalid": "Use a date (YYYY-MM-DD) or an ISO 8601 datetime."}

    def to_internal_value(self, data: Any) -> datetime:
        text = str(data)
        if not text.isascii():  # Django's date patterns use `\d`, which reads "٢٠٢٦" as 2026
            self.fail("invalid")
        text = text.strip()
        try:
            moment = parse_datetime(text)
            if moment is None:
                day = parse_date(text)
                if day is None:
                    self.fail("invalid")
                moment = datetime.combine(day, time.min)
        except ValueError:
            self.fail("invalid")
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        try:
            # PostgreSQL accepts offsets up to 15:59 only; in UTC every valid moment is fine.
            return moment.astimezone(UTC)
        except OverflowError:
            self.fail("invalid")


class HistoryQuerySerializer(serializers.Serializer):
    wallet_balance_id = serializers.UUIDField(required=False)
    wallet_id = serializers.UUIDField(required=False)
    type = serializers.ChoiceField(choices=TransactionType.choices, required=False)
    created_after = DateOrDateTimeField(required=False)
    created_before = DateOrDateTimeField(required=False)
