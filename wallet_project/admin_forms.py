"""What the back office's money forms share: strict decimal input and the two-step confirmation.

A number typed by staff is read one way only: ASCII digits with at most one
decimal point. `1,08`, `1e3`, `1 000`, `1'000`, `١٢` and `+5` are errors shown
next to the field, never a different number: a locale's comma or a
spreadsheet's exponent must not turn 1.08 into 108 or 1e3 into 1,000.00.

Every form that moves money or sets a rate is answered twice: the first POST
validates and shows what will happen (old → new, current → resulting); only a
second POST carrying `confirm=yes` acts, after validating everything again on
the server. The hidden fields of the confirmation page are never trusted: the
view recomputes from the database, and a `seen` value that no longer matches
(the rate or balance changed meanwhile) shows the confirmation again with the
new numbers instead of acting.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from wallet_project.money import EXACT, MAX_AMOUNT, RATE_DECIMAL_PLACES, RATE_MAX_DIGITS, decimals_of

CONFIRM = "confirm"
EDIT = "edit"

_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)


def parse_strict_decimal(raw: str, *, max_decimals: int, currency: str = "") -> Decimal:
    """Read `raw` as a positive plain decimal (`12`, `12.5`), or raise ValidationError saying what is wrong.

    Surrounding whitespace is ignored; anything else that is not an ASCII digit
    or a single decimal point is refused with a message naming the mistake.
    """
    text = raw.strip()
    if not text:
        raise ValidationError("This field is required.", code="required")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise ValidationError(_why_not_plain(text), code="invalid")
    value = Decimal(text)
    if value <= 0:
        raise ValidationError("Must be greater than zero.", code="not_positive")
    if decimals_of(value) > max_decimals:
        if currency and max_decimals == 0:
            message = f"{currency} has no minor unit; type a whole number."
        elif currency:
            message = f"{currency} allows at most {max_decimals} decimal places."
        else:
            message = f"At most {max_decimals} decimal places."
        raise ValidationError(message, code="precision")
    return value


def _why_not_plain(text: str) -> str:
    """The message for a number that is not plain digits with one optional point, naming the mistake."""
    if "," in text:
        return "Use a point for decimals and no thousands separator: commas are not accepted (1.08, not 1,08)."
    if any(char in "eE" for char in text):
        return "Type the number in full: exponents such as 1e3 are not accepted."
    if any(char.isspace() for char in text):
        return "No spaces inside the number."
    if any(char in "'’_" for char in text):
        return "No thousands separators: type the digits only (1000.00)."
    if any(char.isdigit() and not char.isascii() for char in text):
        return "Use the digits 0-9 only."
    if text.startswith("-"):
        return "Must be greater than zero."
    if text.count(".") > 1 or text.startswith(".") or text.endswith("."):
        return "Type a number such as 12.50: digits, at most one point, digits on both sides of it."
    return "Type a plain number such as 12.50: digits and at most one point."


class StrictDecimalField(forms.CharField):
    """A text input read by `parse_strict_decimal`; cleans to a Decimal.

    `max_decimals` and `currency` may be set after the form is built (the
    balance's minor unit is known only then).
    """

    def __init__(
        self, *, max_decimals: int, currency: str = "", max_value: Decimal | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
        super().__init__(**kwargs)
        self.max_decimals = max_decimals
        self.currency = currency
        self.max_value = max_value

    def clean(self, value: Any) -> Decimal | None:  # type: ignore[override]
        text = super().clean(value)
        if text in self.empty_values:
            return None
        number = parse_strict_decimal(text, max_decimals=self.max_decimals, currency=self.currency)
        if self.max_value is not None and number > self.max_value:
            raise ValidationError(f"Must be at most {self.max_value:f}.", code="max_value")
        return number


def amount_field(**kwargs: Any) -> StrictDecimalField:
    """An amount of money: precision set per currency by the form, at most the contract's largest amount."""
    return StrictDecimalField(max_decimals=0, max_value=MAX_AMOUNT, **kwargs)


def rate_field(**kwargs: Any) -> StrictDecimalField:
    """An exchange rate: positive, up to the column's 18 decimals and 18 integer digits."""
    largest = Decimal(10) ** (RATE_MAX_DIGITS - RATE_DECIMAL_PLACES) - Decimal(1).scaleb(-RATE_DECIMAL_PLACES)
    return StrictDecimalField(max_decimals=RATE_DECIMAL_PLACES, max_value=largest, **kwargs)


class CurrencyAmountForm(forms.Form):
    """A money form on one currency: `amount` takes that currency's digits, `seen` what the confirmation showed.

    A subclass declares `amount` (with `amount_field`) and its other fields.
    """

    amount: StrictDecimalField
    seen = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, currency: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        amount = self.fields["amount"]
        amount.max_decimals = currency.minor_unit  # type: ignore[attr-defined]
        amount.currency = currency.code  # type: ignore[attr-defined]


class ReasonField(forms.CharField):
    """Why the staff member acts: required, kept in the staff-action history and the audit log."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 255)
        kwargs.setdefault("strip", True)
        kwargs.setdefault(
            "help_text", "Required. Kept in the staff-action history and the audit log (e.g. a ticket number)."
        )
        super().__init__(**kwargs)


def confirming(request: HttpRequest) -> bool:
    """The POST is the confirmation of a page already shown (its `confirm` button)."""
    return request.POST.get(CONFIRM) == "yes"


def editing(request: HttpRequest) -> bool:
    """The POST asks to go back from the confirmation to the form, with the values kept."""
    return EDIT in request.POST


def rate_warn_percent() -> Decimal:
    return Decimal(str(settings.ADMIN_RATE_WARN_PERCENT))


def percent_change(old: Decimal, new: Decimal) -> Decimal:
    """(new − old) / old in percent, to two decimals."""
    return EXACT.divide(EXACT.multiply(EXACT.subtract(new, old), Decimal(100)), old).quantize(Decimal("0.01"))


SEEN = "seen"


def confirm_hidden_fields(form: forms.Form, *, seen: str) -> list[tuple[str, str]]:
    """The typed values to carry through the confirmation page, and the state that page showed as `seen`."""
    values = [(name, str(form.data.get(name, "")).strip()) for name in form.fields if name != SEEN]
    return [*values, (SEEN, seen)]


class StaleConfirmation(Exception):
    """What the confirmation page showed no longer holds: nothing was done, show it again with the new numbers."""
