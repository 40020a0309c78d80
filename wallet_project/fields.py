"""Serializer fields shared by the apps: each reads exactly what its OpenAPI schema says.

DRF's own fields are lenient where the contract is not: a text field turns the JSON number 0 into
"0", a UUID field takes an integer or 32 hex digits without hyphens, a choice or code field takes
other spellings. The fields here refuse what their schema does not admit (400 `validation_error`),
so that the document is the truth about the server (docs/ARCHITECTURE.md, "The schema is the truth").
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from wallet_project.money import AMOUNT_DECIMAL_PLACES, MAX_AMOUNT, AmountError, amount_pattern, parse_amount

CURRENCY_CODE_PATTERN = r"^[A-Z]{3}$"
# Text without a NUL character (PostgreSQL's text cannot hold one), in ECMA-262 and Python alike. Not empty:
# drf-spectacular documents a field that may be blank as this or "" (`oneOf`), which must not both admit "".
NO_NUL_PATTERN = r"^[^\u0000]+$"
# The OpenAPI keywords a postprocessing hook (wallet_project.schema.add_known_currencies) replaces with what the
# currencies the service knows when the document is made say: their codes (an `enum`), and the decimals each
# takes in an amount beside its code (an `anyOf` of the body, one branch per minor unit).
KNOWN_CURRENCY_MARK = "x-known-currency"
DECIMALS_OF_MARK = "x-decimals-of-currency"
# The canonical spelling of a UUID, as JSON Schema's `uuid` format reads it (hex digits in either case).
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

AMOUNT_DESCRIPTION = (
    "A decimal string of ASCII digits with an optional point (a JSON number is accepted too): "
    "{range}, at most 10^15, with at most {places} decimals that are not zero. No currency has more "
    "decimals than its minor unit (`GET /api/v1/currencies/`): an amount with more is answered 400 in "
    "`details`. Surrounding JSON whitespace and a leading `+` are read; exponents (`1E1`), digits of other "
    "scripts (`١٠`, `１０`) and other spaces are refused."
)


def amount_schema(*, allow_zero: bool, decimals: int = AMOUNT_DECIMAL_PLACES) -> dict[str, Any]:
    """A request amount as OpenAPI says it: a pattern-exact decimal string, or a JSON number in range, with at
    most `decimals` decimals (AMOUNT_DECIMAL_PLACES, the most any currency has, unless a currency is known)."""
    number: dict[str, Any] = {
        "type": "number",
        "minimum": 0,
        "maximum": int(MAX_AMOUNT),
        "multipleOf": float(Decimal(1).scaleb(-decimals)) if decimals else 1,
    }
    if not allow_zero:
        number["exclusiveMinimum"] = True
    return {
        "example": "12.50",
        "anyOf": [
            {"type": "string", "pattern": amount_pattern(decimals=decimals, allow_zero=allow_zero)},
            number,
        ],
    }


class AmountField(serializers.Field):
    """A request amount: positive, finite, at most 10^15; a string or a JSON number, read exactly.

    Its schema (wallet_project.schema.AmountExtension) is `amount_schema`. `decimals_of` names the body's
    currency field, when the body has one: the document then says the decimals each currency takes.
    """

    default_error_messages = {"invalid": "A valid number is required."}

    def __init__(self, *, allow_zero: bool = False, decimals_of: str | None = None, **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        self.decimals_of = decimals_of
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        try:
            return parse_amount(data, allow_zero=self.allow_zero)
        except AmountError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, value: Decimal) -> str:
        return format(value, "f")


class _TextOnly:
    """Only a JSON string, kept as sent: DRF's text fields would read the number 0 as the text "0", and trim
    surrounding whitespace, so that " " would be blank although its schema's `minLength` admits it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")  # type: ignore[attr-defined]
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(_TextOnly, serializers.CharField):
    """A JSON string (400 "Not a valid string." for a number, a boolean, a list or an object). PostgreSQL
    keeps no NUL character, so none is admitted (its schema's `pattern` says so)."""


class StrictRegexField(_TextOnly, serializers.RegexField):
    """A JSON string matching an anchored pattern (`^…$`) as ECMA-262 reads it, the OpenAPI document's dialect.

    Write the pattern with ASCII classes (`[0-9]`, not `\\d`): ECMA-262 reads `\\d` as ASCII digits, Python as any
    script's. The whole value must match: Python's `$` also matches before a final newline, ECMA-262's does not.
    """

    def __init__(self, regex: str, **kwargs: Any) -> None:
        if not (regex.startswith("^") and regex.endswith("$")):
            raise ValueError(f"StrictRegexField: anchor the pattern {regex!r} with ^ and $")
        super().__init__(regex, **kwargs)
        self.whole_value = re.compile(regex)

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if not self.whole_value.fullmatch(value):
            self.fail("invalid")
        return value


class StrictEmailField(_TextOnly, serializers.EmailField):
    """A JSON string that is an email address."""


class StrictUUIDField(serializers.UUIDField):
    """A UUID in its canonical spelling, the JSON Schema `uuid` format (DRF also takes an integer, braces, a
    `urn:uuid:` prefix or 32 digits without hyphens)."""

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str) or not UUID_RE.fullmatch(data):
            self.fail("invalid", value=data)
        return uuid.UUID(data)


@extend_schema_field(
    {
        "type": "string",
        "pattern": CURRENCY_CODE_PATTERN,
        KNOWN_CURRENCY_MARK: True,
        "description": "An ISO 4217 code the service knows (`GET /api/v1/currencies/`), in capitals.",
    }
)
class CurrencyCodeField(StrictRegexField):
    """An ISO 4217 code in capitals; whether the service knows it is the caller's to check (400 if not)."""

    default_error_messages = {"invalid": "An ISO 4217 currency code is three capital letters, e.g. USD."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(CURRENCY_CODE_PATTERN, **kwargs)


@extend_schema_field(
    {
        "type": "string",
        "pattern": CURRENCY_CODE_PATTERN,
        "description": "An ISO 4217 code in capitals; a code no entry has matches nothing.",
    }
)
class CurrencyCodeFilterField(StrictRegexField):
    """A currency code that filters a list: any well-formed code, known or not (an unknown one finds nothing)."""

    default_error_messages = {"invalid": "An ISO 4217 currency code is three capital letters, e.g. USD."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(CURRENCY_CODE_PATTERN, **kwargs)


# What the service writes: amounts with their currency's minor unit and exact rates, as decimal strings that are
# never negative, and currency codes.
DECIMAL_TEXT_SCHEMA = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "example": "12.50"}
CURRENCY_CODE_SCHEMA = {"type": "string", "pattern": CURRENCY_CODE_PATTERN, "example": "USD"}


@extend_schema_field(DECIMAL_TEXT_SCHEMA)
class DecimalTextField(serializers.CharField):
    """An amount or a rate in an answer: digits, and a point and digits when the minor unit has some."""


@extend_schema_field(CURRENCY_CODE_SCHEMA)
class CurrencyCodeTextField(serializers.CharField):
    """A currency's ISO 4217 code in an answer."""


class QuerySerializer(serializers.Serializer):
    """A query string's parameters: each given one is validated, an empty value included.

    DRF reads a `QueryDict` as an HTML form, where an empty optional field counts as not sent, so
    `?wallet_id=` listed everything although "" is no UUID. A repeated parameter is read once, its last
    value; a serializer whose parameter repeats (`?type=a&type=b`) names it in `repeated`.
    """

    repeated: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "getlist"):
            data = {key: data.getlist(key) if key in self.repeated else data.get(key) for key in data}
        return super().to_internal_value(data)


# RFC 3339's full-date and date-time, JSON Schema's `date` and `date-time` formats: a date-time names its
# zone (`Z` or an offset); `T` and `Z` in either case; any number of fraction digits.
_MOMENT_RE = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?:[Zz]|(?P<sign>[+-])(?P<offset_hours>[0-9]{2}):(?P<offset_minutes>[0-9]{2})))?"
)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def parse_moment(text: str) -> datetime | None:
    """A full-date (midnight UTC) or an RFC 3339 date-time, as an aware datetime in UTC; None if it is neither.

    Exactly what JSON Schema's `date` and `date-time` formats admit: the year 0000 (before any entry) and a
    leap second (23:59:60 in UTC) included. Moments that Python cannot hold in UTC become its earliest or
    latest one, and fractions below a microsecond round up: entries are stamped in whole microseconds, so
    `>=` and `<` against the rounded moment select what they would against the exact one.
    """
    found = _MOMENT_RE.fullmatch(text)
    if found is None:
        return None
    year, month, day = int(found["year"]), int(found["month"]), int(found["day"])
    try:
        # Year 0 is a leap year like 2000; Python's calendar starts at year 1.
        date(year or 2000, month, day)
    except ValueError:
        return None
    if found["hour"] is None:
        return _EARLIEST if year == 0 else datetime(year, month, day, tzinfo=UTC)
    hour, minute, second = int(found["hour"]), int(found["minute"]), int(found["second"])
    offset = _offset_minutes(found)
    if offset is None or hour > 23 or minute > 59 or second > 60:
        return None
    if second == 60 and (hour * 60 + minute - offset) % (24 * 60) != 23 * 60 + 59:
        return None  # a leap second is the last second of a day in UTC
    if year == 0:
        return _EARLIEST
    local = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    try:
        return local + timedelta(
            seconds=second - min(second, 59), microseconds=_microseconds(found["fraction"]), minutes=-offset
        )
    except OverflowError:
        return _EARLIEST if local.year == 1 else _LATEST


def _offset_minutes(found: re.Match[str]) -> int | None:
    """The zone's offset from UTC in minutes (`Z`: 0), or None for an offset no zone has."""
    if found["sign"] is None:
        return 0
    hours, minutes = int(found["offset_hours"]), int(found["offset_minutes"])
    if hours > 23 or minutes > 59:
        return None
    return (hours * 60 + minutes) * (-1 if found["sign"] == "-" else 1)


def _microseconds(fraction: str | None) -> int:
    """A second's fraction in whole microseconds, rounded up past the sixth digit."""
    digits = fraction or ""
    return int(digits[:6].ljust(6, "0")) + (1 if digits[6:].strip("0") else 0)


@extend_schema_field(
    {
        "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}],
        "description": "A date (`2026-11-25`, midnight UTC) or an RFC 3339 date-time with its zone "
        "(`2026-11-25T10:05:00Z`, `2026-11-25T11:05:00+01:00`).",
    }
)
class DateOrDateTimeField(serializers.Field):
    """`2026-11-25` (midnight UTC) or an RFC 3339 date-time, read in UTC."""

    default_error_messages = {"invalid": "Use a date (YYYY-MM-DD) or an RFC 3339 date-time with its zone."}

    def to_internal_value(self, data: Any) -> datetime:
        moment = parse_moment(data) if isinstance(data, str) else None
        if moment is None:
            self.fail("invalid")
        return moment
