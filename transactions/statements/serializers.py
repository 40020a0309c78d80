"""The query strings of `as_of` and of statements, and the answers' shapes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers
from rest_framework.fields import empty

from transactions.models import TransactionType
from transactions.serializers import TransactionOutputSerializer
from transactions.statements.instants import InstantField
from transactions.statements.selectors import BalanceAsOf
from wallet_project.money import format_amount

MAX_PERIOD = timedelta(days=366)
FORMATS = ("json", "csv", "pdf")


class FormatField(serializers.ChoiceField):
    """The statement's format; `?format=` (empty) is a wrong format, not the default one."""

    def get_value(self, dictionary: Any) -> Any:
        return dictionary[self.field_name] if self.field_name in dictionary else empty


class BalanceQuerySerializer(serializers.Serializer):
    as_of = InstantField(
        required=False,
        help_text="An instant (RFC 3339, with its zone): the balance as it was then, from its ledger. A later "
        "instant than now is answered as of now; an earlier one than the balance's first entry, 0.",
    )


class BalanceAsOfOutputSerializer(serializers.Serializer):
    """A balance as it was at an instant: the amount after the last entry created at or before `as_of`."""

    id = serializers.UUIDField(source="balance.pk", read_only=True)
    wallet_id = serializers.UUIDField(source="balance.wallet_id", read_only=True)
    currency = serializers.CharField(source="balance.currency_id", read_only=True)
    amount = serializers.SerializerMethodField(help_text="The balance at `as_of`: 0 before its first entry.")
    updated_at = serializers.DateTimeField(
        source="point.changed_at",
        read_only=True,
        allow_null=True,
        help_text="When the entry that left this amount was written; null before the balance's first entry.",
    )
    as_of = serializers.DateTimeField(
        read_only=True, help_text="The instant answered: the one asked for, or now when it asked for a later one."
    )

    def get_amount(self, answer: BalanceAsOf) -> str:
        return format_amount(answer.point.amount, answer.balance.currency.minor_unit)


class StatementQuerySerializer(serializers.Serializer):
    """A period of at most 366 days, `from` inclusive, `to` exclusive, and the format of the statement."""

    to = InstantField(help_text="The end of the period (exclusive); a later instant than now means now.")
    format = FormatField(choices=FORMATS, required=False, default="json", help_text="`json` (default), `csv` or `pdf`.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # `from` is a Python keyword: no class attribute can carry the name.
        fields = super().get_fields()
        start = InstantField(help_text="The start of the period (inclusive).")
        return {"from": start, **fields}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, asked_end = attrs["from"], attrs["to"]
        if asked_end <= start:
            raise serializers.ValidationError({"to": ["The period must end after it starts."]})
        if asked_end - start > MAX_PERIOD:
            raise serializers.ValidationError({"to": ["A statement covers at most 366 days."]})
        end = min(asked_end, timezone.now())
        if end <= start:
            raise serializers.ValidationError({"from": ["The period starts in the future."]})
        return {**attrs, "to": end}


class TypeTotalSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=TransactionType.choices, read_only=True)
    direction = serializers.ChoiceField(choices=["credit", "debit"], read_only=True)
    count = serializers.IntegerField(read_only=True, min_value=1)
    amount = serializers.CharField(read_only=True, help_text="The sum of the entries of this type.")


class HolderSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True)


class StatementJsonSerializer(serializers.Serializer):
    """A statement in JSON, as it is streamed (documentation only: `json_format.JsonStatement` writes it).

    `opening_balance` + `total_credits` − `total_debits` = `closing_balance`,
    checked while the entries are written: a statement that does not add up is
    cut off before its end (the body is not valid JSON), never sent whole.
    """

    balance_id = serializers.UUIDField(read_only=True)
    wallet_id = serializers.UUIDField(read_only=True)
    currency = serializers.CharField(read_only=True)
    holder = HolderSerializer(read_only=True)
    period_from = serializers.DateTimeField(read_only=True)
    period_to = serializers.DateTimeField(read_only=True)
    generated_at = serializers.DateTimeField(read_only=True)
    opening_balance = serializers.CharField(read_only=True, help_text="The balance at `from`, before its entries.")
    entries = TransactionOutputSerializer(
        many=True, read_only=True, help_text="Every entry of the period, oldest first."
    )
    totals = TypeTotalSerializer(many=True, read_only=True, help_text="Per type present in the period.")
    total_credits = serializers.CharField(read_only=True)
    total_debits = serializers.CharField(read_only=True)
    closing_balance = serializers.CharField(read_only=True, help_text="The balance at `to`, after its entries.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # The answer names the period `from` and `to`, as the query does.
        fields = super().get_fields()
        renamed = {"period_from": "from", "period_to": "to"}
        return {renamed.get(name, name): field for name, field in fields.items()}


_TIMESTAMP = serializers.DateTimeField()


def instant_text(moment: datetime | None) -> str | None:
    """An instant as every answer of the API writes it."""
    return None if moment is None else _TIMESTAMP.to_representation(moment)
