"""Serializer fields shared by the apps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from wallet_project.money import AMOUNT_PATTERN, AmountError, parse_amount


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": AMOUNT_PATTERN,
        "example": "12.50",
        "description": "A positive decimal string of ASCII digits (a JSON number is accepted too), at most "
        "10^15, with no more decimals than the currency's minor unit. Exponent notation (`1E1`) and "
        "surrounding spaces are read; digits of other scripts (`١٠`, `１０`) and other spaces are refused.",
    }
)
class AmountField(serializers.Field):
    """A request amount: positive, finite, at most 10^15; a string or a JSON number, read exactly."""

    default_error_messages = {"invalid": "A valid number is required."}

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        try:
            return parse_amount(data, allow_zero=self.allow_zero)
        except AmountError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, value: Decimal) -> str:
        return format(value, "f")


@extend_schema_field(OpenApiTypes.STR)
class CurrencyCodeField(serializers.CharField):
    """An ISO 4217 code, upper-cased."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_length", 3)
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        return super().to_internal_value(data).upper()
