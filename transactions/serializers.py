from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from loyalty.serializers import EarnedSerializer
from transactions.models import Transaction, TransactionType
from wallet_project.fields import (
    DECIMAL_TEXT_SCHEMA,
    AmountField,
    CurrencyCodeTextField,
    DateOrDateTimeField,
    QuerySerializer,
    StrictCharField,
    StrictUUIDField,
)
from wallet_project.money import format_amount
from wallet_project.quick_input import QuickSerializer
from wallets.selectors import minor_unit_of

_TIMESTAMP = serializers.DateTimeField()


class TransactionOutputSerializer(serializers.ModelSerializer):
    wallet_balance_id = serializers.UUIDField(read_only=True)
    wallet_id = serializers.UUIDField(read_only=True)
    currency = CurrencyCodeTextField(source="currency_id", read_only=True)
    amount = serializers.SerializerMethodField()
    balance_after = serializers.SerializerMethodField()
    sequence = serializers.IntegerField(
        min_value=1, read_only=True, help_text="The entry's place in its balance's history: 1, 2, 3 … without gaps."
    )
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

    @extend_schema_field(DECIMAL_TEXT_SCHEMA)
    def get_amount(self, entry: Transaction) -> str:
        return format_amount(entry.amount, minor_unit_of(entry.currency_id))

    @extend_schema_field(DECIMAL_TEXT_SCHEMA)
    def get_balance_after(self, entry: Transaction) -> str:
        return format_amount(entry.balance_after, minor_unit_of(entry.currency_id))

    @extend_schema_field({**DECIMAL_TEXT_SCHEMA, "example": "0.91", "nullable": True})
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
    description = StrictCharField(
        max_length=255, required=False, allow_blank=True, default="", help_text="Free text kept on the entry."
    )


class BalanceMovementInputSerializer(_MovementInputSerializer):
    """A deposit or a withdrawal: one of your balances and an amount in its currency."""

    wallet_balance_id = StrictUUIDField(help_text="One of your balances.")


class PaymentInputSerializer(BalanceMovementInputSerializer):
    """A payment to a merchant from one of your balances."""

    merchant = StrictCharField(max_length=255, help_text="Who is paid; kept on the entry.")


class TransferInputSerializer(_MovementInputSerializer):
    """A transfer: `amount` is in the source balance's currency."""

    from_wallet_balance_id = StrictUUIDField(help_text="One of your balances: the one debited.")
    to_wallet_balance_id = StrictUUIDField(help_text="Any balance, yours or another user's; not the source.")


class RefundInputSerializer(QuickSerializer):
    """A refund of a payment; without `amount` (or with null), what is left of the payment is refunded."""

    # Omitted or null: refund what is left (refund_create needs the argument either way).
    amount = AmountField(required=False, allow_null=True, default=None)
    description = StrictCharField(max_length=255, required=False, allow_blank=True, default="")


class HistoryQuerySerializer(QuerySerializer):
    wallet_balance_id = StrictUUIDField(required=False, help_text="Only this balance's entries.")
    wallet_id = StrictUUIDField(required=False, help_text="Only the entries of this wallet's balances.")
    type = serializers.ChoiceField(choices=TransactionType.choices, required=False, help_text="Only this type.")
    created_after = DateOrDateTimeField(required=False, help_text="Entries at or after this moment.")
    created_before = DateOrDateTimeField(required=False, help_text="Entries before this moment.")
