"""Fill the currencies and a current rate for every ordered pair, so the service works right after `migrate`.

The rates are SAMPLE rates for development and demos, not market data: the
back office replaces them in the admin (a new rate closes the old one). Six
rates are given (USD→IDR 15500, USD→JPY 158.45, USD→EUR 0.91, EUR→USD 1.1,
JPY→IDR 97.8, EUR→JPY 174.6) plus a USD rate for each other currency; every
other pair is derived: the inverse of a given rate, else the cross through
USD, rounded to 10 significant digits. Like real quotes they are not
mutually consistent (USD→EUR→USD is not 1), which is fine: each ordered pair
has its own rate and none is inverted at run time.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

from django.db import migrations
from django.utils import timezone

CURRENCIES = [
    ("USD", "US Dollar", 2),
    ("EUR", "Euro", 2),
    ("GBP", "Pound Sterling", 2),
    ("JPY", "Yen", 0),
    ("IDR", "Rupiah", 2),
    ("KWD", "Kuwaiti Dinar", 3),
    ("CHF", "Swiss Franc", 2),
    ("SGD", "Singapore Dollar", 2),
]

GIVEN = {
    ("USD", "IDR"): "15500",
    ("USD", "JPY"): "158.45",
    ("USD", "EUR"): "0.91",
    ("EUR", "USD"): "1.1",
    ("JPY", "IDR"): "97.8",
    ("EUR", "JPY"): "174.6",
    ("USD", "GBP"): "0.79",
    ("USD", "KWD"): "0.3075",
    ("USD", "CHF"): "0.88",
    ("USD", "SGD"): "1.34",
}

_CONTEXT = Context(prec=60)


def _significant(value: Decimal, digits: int = 10) -> Decimal:
    return value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1), rounding=ROUND_HALF_EVEN, context=_CONTEXT)


def _rate(base: str, quote: str) -> Decimal:
    if (base, quote) in GIVEN:
        return Decimal(GIVEN[base, quote])
    if (quote, base) in GIVEN:
        return _significant(_CONTEXT.divide(Decimal(1), Decimal(GIVEN[quote, base])))
    to_usd = _rate(base, "USD")
    from_usd = _rate("USD", quote)
    return _significant(_CONTEXT.multiply(to_usd, from_usd))


def sample_rates() -> dict[tuple[str, str], Decimal]:
    codes = [code for code, _, _ in CURRENCIES]
    return {(base, quote): _rate(base, quote) for base in codes for quote in codes if base != quote}


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    Currency = apps.get_model("wallets", "Currency")
    ExchangeRate = apps.get_model("wallets", "ExchangeRate")
    for code, name, minor_unit in CURRENCIES:
        Currency.objects.update_or_create(code=code, defaults={"name": name, "minor_unit": minor_unit})
    now = timezone.now()
    for (base, quote), rate in sample_rates().items():
        if not ExchangeRate.objects.filter(base_id=base, quote_id=quote, valid_to__isnull=True).exists():
            ExchangeRate.objects.create(base_id=base, quote_id=quote, rate=rate, valid_from=now)


class Migration(migrations.Migration):
    dependencies = [("wallets", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
