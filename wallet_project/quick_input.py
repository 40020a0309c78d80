"""A shortcut through DRF serializers for request bodies that are plainly valid.

A DRF serializer deep-copies its declared fields for every instance and walks
them through `run_validation`: for a money movement's three or four fields that
was about 9 % of the request's Python instructions (docs/PERFORMANCE.md,
"Quick validation of plain bodies").
`validated(serializer_class, data)` first tries `quick_validated`, which
accepts only what the serializer would accept unchanged, giving the same
`validated_data`; anything else (a missing or malformed field, a blank, a
number where a string is expected, a field type it does not know, a
`validate*` hook) goes through the serializer itself, so every error keeps its
exact message and details. `tests/test_quick_input.py` holds
the two to the same answers.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.validators import MaxLengthValidator, MinLengthValidator, ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from wallet_project.fields import UUID_RE, AmountField, StrictCharField, StrictUUIDField
from wallet_project.money import AmountError, parse_amount

_REFUSED = object()  # not decided here: the serializer will say why


def _char(field: serializers.CharField, value: Any) -> Any:
    if not isinstance(value, str):
        return _REFUSED
    text = value.strip() if field.trim_whitespace else value
    if text == "":
        return "" if field.allow_blank else _REFUSED
    if field.max_length is not None and len(text) > field.max_length:
        return _REFUSED
    if field.min_length is not None and len(text) < field.min_length:
        return _REFUSED
    if "\x00" in text:
        return _REFUSED
    try:
        text.encode("utf-8")  # a lone surrogate does not encode; DRF refuses it
    except UnicodeEncodeError:
        return _REFUSED
    return text


def _uuid(field: StrictUUIDField, value: Any) -> Any:
    if not isinstance(value, str) or not UUID_RE.fullmatch(value):
        return _REFUSED
    return uuid.UUID(value)


def _amount(field: AmountField, value: Any) -> Any:
    try:
        return parse_amount(value, allow_zero=field.allow_zero)
    except AmountError:
        return _REFUSED


_CONVERTERS = {StrictCharField: _char, StrictUUIDField: _uuid, AmountField: _amount}
# What DRF's CharField adds by itself, and `_char` checks.
_KNOWN_VALIDATORS = (
    MaxLengthValidator,
    MinLengthValidator,
    ProhibitNullCharactersValidator,
    ProhibitSurrogateCharactersValidator,
)


class QuickSerializer(serializers.Serializer):
    """A serializer whose plainly valid input can skip DRF's machinery (see the module docstring)."""

    @classmethod
    def quick_validated(cls, data: Any) -> dict[str, Any] | None:
        """What `is_valid()` would put in `validated_data`, or None when the serializer must decide."""
        if not isinstance(data, dict) or cls.validate is not serializers.Serializer.validate:
            return None
        validated: dict[str, Any] = {}
        for name, field in cls._declared_fields.items():
            convert = _CONVERTERS.get(type(field))
            if convert is None or field.read_only or field.source not in (None, name):
                return None
            if any(not isinstance(validator, _KNOWN_VALIDATORS) for validator in field.validators):
                return None
            if hasattr(cls, f"validate_{name}"):
                return None
            if name not in data:
                if field.required:
                    return None
                if field.default is not empty:
                    validated[name] = field.default
                continue
            value = data[name]
            if value is None:
                if not field.allow_null:
                    return None
                validated[name] = None
                continue
            converted = convert(field, value)
            if converted is _REFUSED:
                return None
            validated[name] = converted
        return validated


def validated(serializer_class: type[QuickSerializer], data: Any) -> dict[str, Any]:
    """The validated data of `data`, by the shortcut when it applies; raises ValidationError as DRF does."""
    quick = serializer_class.quick_validated(data)
    if quick is not None:
        return quick
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
