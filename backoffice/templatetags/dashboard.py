"""Filters of the dashboard's template."""

from __future__ import annotations

from decimal import Decimal

from django import template

from wallet_project.money import EXACT, quantum

register = template.Library()


@register.filter
def money(amount: Decimal, minor_unit: int) -> str:
    """An amount with its currency's digits and thousands separators: `1234567.5` in USD → `1,234,567.50`.

    Exact: a Decimal formatted as a Decimal, never through a float.
    """
    return format(amount.quantize(quantum(minor_unit), context=EXACT), ",f")


@register.filter
def count(number: int) -> str:
    """A whole number with thousands separators."""
    return f"{number:,}"
