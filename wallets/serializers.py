from __future__ import annotations

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from transactions.holds.selectors import held_now
from wallet_project.fields import (
    DECIMAL_TEXT_SCHEMA,
    AmountField,
    CurrencyCodeField,
    CurrencyCodeTextField,
    DecimalTextField,
    QuerySerializer,
    StrictCharField,
)
from wallet_project.money import AMOUNT_DECIMAL_PLACES, format_amount
from wallets.models import Currency, ExchangeRate, Wallet, WalletBalance
from wallets.selectors import TotalBalance


class BalanceOutputSerializer(serializers.ModelSerializer):
    wallet_id = serializers.UUIDField(read_only=True)
    currency = CurrencyCodeTextField(source="currency_id", read_only=True)
    amount = serializers.SerializerMethodField(help_text="The balance: what its ledger entries add up to.")
    held = serializers.SerializerMethodField(help_text="What its active holds still reserve, as of now.")
    available = serializers.SerializerMethodField(
        help_text="`amount − held`: what withdrawals, payments, outgoing transfers and new holds may use."
    )

    class Meta:
        model = WalletBalance
        fields = ["id", "wallet_id", "currency", "amount", "held", "available", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(DECIMAL_TEXT_SCHEMA)
    def get_amount(self, balance: WalletBalance) -> str:
        return format_amount(balance.amount, balance.currency.minor_unit)

    @extend_schema_field(DECIMAL_TEXT_SCHEMA)
    def get_held(self, balance: WalletBalance) -> str:
        return format_amount(held_now(balance), balance.currency.minor_unit)

    @extend_schema_field(DECIMAL_TEXT_SCHEMA)
    def get_available(self, balance: WalletBalance) -> str:
        return format_amount(balance.amount - held_now(balance), balance.currency.minor_unit)


class WalletOutputSerializer(serializers.ModelSerializer):
    balances = BalanceOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Wallet
        fields = ["id", "name", "is_frozen", "created_at", "balances"]
        read_only_fields = fields


class WalletCreateInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, help_text="Unique among your wallets; kept as sent.")


class BalanceCreateInputSerializer(serializers.Serializer):
    currency = CurrencyCodeField()
    # 0, the default, opens an empty balance; anything more is booked as a DEPOSIT.
    initial_amount = AmountField(allow_zero=True, decimals_of="currency", required=False, allow_null=True)


class TotalBalanceQuerySerializer(QuerySerializer):
    currency = CurrencyCodeField(help_text="The currency of the total.")


class TotalBalanceOutputSerializer(serializers.Serializer):
    wallet_id = serializers.UUIDField(read_only=True)
    currency = CurrencyCodeTextField(source="currency.code", read_only=True)
    total = serializers.SerializerMethodField()
    rates = serializers.SerializerMethodField()

    @extend_schema_field(DECIMAL_TEXT_SCHEMA)
    def get_total(self, total: TotalBalance) -> str:
        return format_amount(total.total, total.currency.minor_unit)

    @extend_schema_field(
        inline_serializer(
            "TotalBalanceRate",
            fields={"from": CurrencyCodeTextField(), "to": CurrencyCodeTextField(), "rate": DecimalTextField()},
            many=True,
        )
    )
    def get_rates(self, total: TotalBalance) -> list[dict[str, str]]:
        return [{"from": base, "to": quote, "rate": format(rate.normalize(), "f")} for base, quote, rate in total.rates]


class CurrencyOutputSerializer(serializers.ModelSerializer):
    code = CurrencyCodeTextField(read_only=True)
    minor_unit = serializers.IntegerField(
        min_value=0, max_value=AMOUNT_DECIMAL_PLACES, read_only=True, help_text="How many decimals its amounts have."
    )

    class Meta:
        model = Currency
        fields = ["code", "name", "minor_unit"]
        read_only_fields = fields


class RateOutputSerializer(serializers.ModelSerializer):
    base = CurrencyCodeTextField(source="base_id")
    quote = CurrencyCodeTextField(source="quote_id")
    rate = serializers.SerializerMethodField()

    class Meta:
        model = ExchangeRate
        fields = ["base", "quote", "rate", "valid_from"]
        read_only_fields = fields

    @extend_schema_field(DECIMAL_TEXT_SCHEMA)
    def get_rate(self, rate: ExchangeRate) -> str:
        return format(rate.rate.normalize(), "f")


class RatesQuerySerializer(QuerySerializer):
    base = CurrencyCodeField(required=False, help_text="Only the rates from this currency; all when omitted.")
