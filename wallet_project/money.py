"""Exact money: parsing request amounts and writing them with the currency's minor unit."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Context, Decimal

from wallet_project.errors import InvalidInput

# The largest amount a single request may move (API.md).
MAX_AMOUNT = Decimal(10) ** 15
# Database scale of every stored amount: enough for any ISO 4217 minor unit.
AMOUNT_DECIMAL_PLACES = 4
AMOUNT_MAX_DIGITS = 30
# The most a balance column can hold (NUMERIC(30, 4)).
MAX_BALANCE = Decimal(10) ** (AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES) - Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)
RATE_DECIMAL_PLACES = 18
RATE_MAX_DIGITS = 36

# Wide enough that no amount or product of ours is ever rounded by the context itself.
EXACT = Context(prec=100)

# A decimal string in ASCII: `\d`, `Decimal()` and `str.strip()` would also take other scripts'
# digits ("١٠", "１０") and spaces (no-break, figure), which are no amount in the contract. No
# exponent: the contract's amounts are decimal strings, and only without one can a pattern say
# which strings are in range (a JSON number may still be written `1e2`).
_NUMBER_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_JSON_WHITESPACE = " \t\n\r"

# The OpenAPI document's patterns: exactly the strings `parse_amount` reads (with or without `allow_zero`), and
# with `decimals`, those a currency with that minor unit takes, so a client can tell a good amount without asking.
# Above zero and at most 10^15 (15 digits before the point, or 10^15 itself), with at most `decimals` decimals
# that are not zero (trailing zeros are no decimals: "10.00" is ten); a "+" and JSON's whitespace around are
# read. Only ASCII classes, so ECMA-262 (the document's dialect) and Python read them alike.
_PADDING = r"[ \t\n\r]*"


def amount_pattern(*, decimals: int = AMOUNT_DECIMAL_PLACES, allow_zero: bool = False) -> str:
    """The pattern of the decimal strings `parse_amount` reads, with at most `decimals` decimals."""
    fraction = rf"\.[0-9]{{0,{decimals}}}0*"
    # Below one: a fraction with a non-zero digit among its first `decimals` (none without decimals).
    below_one = ["0" * zeros + "[1-9]" + f"[0-9]{{0,{decimals - 1 - zeros}}}" for zeros in range(decimals)]
    values = [rf"0*[1-9][0-9]{{0,14}}({fraction})?"]
    if below_one:
        values.append(r"0*\.(" + "|".join(below_one) + ")0*")
    values.append(r"0*1000000000000000(\.0*)?")
    if allow_zero:
        values.append(r"0+(\.0*)?|0*\.0+")
    return rf"^{_PADDING}\+?({'|'.join(values)}){_PADDING}$"


AMOUNT_PATTERN = amount_pattern()
AMOUNT_OR_ZERO_PATTERN = amount_pattern(allow_zero=True)


class AmountError(ValueError):
    """A request amount that the contract refuses; the message is for the client."""


def parse_amount(raw: object, *, allow_zero: bool = False) -> Decimal:
    """Read a request amount (decimal string or JSON number) as a positive, finite Decimal up to 10^15.

    A string is ASCII digits with an optional point, optionally padded with JSON's whitespace
    (`AMOUNT_PATTERN`, `AMOUNT_OR_ZERO_PATTERN`); anything else is "A valid number is required."
    """
    if isinstance(raw, bool) or raw is None:
        raise AmountError("A valid number is required.")
    negative_text = False
    if isinstance(raw, (int, Decimal)):
        value = Decimal(raw)
    elif isinstance(raw, str):
        text = raw.strip(_JSON_WHITESPACE)
        if not _NUMBER_RE.fullmatch(text):
            raise AmountError("A valid number is required.")
        value = Decimal(text)
        # "-0" is a negative spelling even though its value is zero; the pattern admits no minus.
        negative_text = text.startswith("-")
    else:
        raise AmountError("A valid number is required.")
    if not value.is_finite():
        raise AmountError("A valid number is required.")
    if value < 0 or negative_text or (value == 0 and not allow_zero):
        raise AmountError(
            "Ensure this value is greater than zero." if not allow_zero else "Ensure this value is not negative."
        )
    if value > MAX_AMOUNT:
        raise AmountError(f"Ensure this value is at most {MAX_AMOUNT:f}.")
    # No currency has more decimals than a column stores; refusing here keeps absurd
    # exponents (1E-999999999) away from the idempotency fingerprint and the database.
    if decimals_of(value) > AMOUNT_DECIMAL_PLACES:
        raise AmountError(f"Ensure this value has at most {AMOUNT_DECIMAL_PLACES} decimal places.")
    # A JSON -0.0 is zero (the schema's `minimum: 0` admits it); no amount keeps a sign.
    return value.copy_abs() if value.is_zero() else value


def decimals_of(amount: Decimal) -> int:
    """How many decimals an amount really has: 1.50 has 1, 100 has 0 (so "10.00" is fine for JPY)."""
    # Not `normalize()`: under a context it rounds to 28 digits and clamps tiny exponents
    # (1.0000000000000000000000000000001 and 1E-999999999 would both pass as whole numbers).
    if amount.is_zero():
        return 0
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


def check_precision(amount: Decimal, minor_unit: int, currency: str, *, field: str = "amount") -> None:
    """Refuse (400, in `details[field]`) an amount with more decimals than its currency allows."""
    if decimals_of(amount) > minor_unit:
        if minor_unit == 0:
            message = f"{currency} has no minor unit; send a whole number."
        else:
            message = f"{currency} allows at most {minor_unit} decimal places."
        raise InvalidInput(message, details={field: [message]})


def quantum(minor_unit: int) -> Decimal:
    return Decimal(1).scaleb(-minor_unit)


def round_down(amount: Decimal, minor_unit: int) -> Decimal:
    return amount.quantize(quantum(minor_unit), rounding=ROUND_DOWN, context=EXACT)


def format_amount(amount: Decimal, minor_unit: int) -> str:
    """`Decimal("12.5000")` in USD → `"12.50"`; in JPY `"1000"`; in KWD `"1.250"`."""
    return format(amount.quantize(quantum(minor_unit), context=EXACT), "f")


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    """`amount × rate` exactly: the default context would round at 28 digits, before our rounding down."""
    return EXACT.multiply(amount, rate)


def format_rate(rate: Decimal) -> str:
    """An exchange rate with its meaningful digits only: 0.91, not 0.910000000000000000; 100, not 1E+2."""
    return f"{rate.normalize():f}"
