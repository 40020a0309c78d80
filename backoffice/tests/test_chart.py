"""The movements chart's geometry and the dashboard's number formats."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest

from backoffice.chart import BOTTOM, HEIGHT, TOP, movements_chart, nice_ceiling
from backoffice.templatetags.dashboard import count, money

KINDS = [("deposits", "Deposits and withdrawals"), ("transfers", "Transfers")]
TODAY = date(2026, 12, 5)
DAYS = [TODAY - timedelta(days=back) for back in range(29, -1, -1)]


@pytest.mark.parametrize(
    ("largest", "top", "step"),
    [(0, 4, 1), (1, 4, 1), (7, 8, 2), (9, 20, 5), (10, 20, 5), (100, 100, 25), (10_001, 20_000, 5_000)],
)
def test_the_axis_reaches_the_largest_bar_in_four_round_steps(largest, top, step):
    assert nice_ceiling(largest) == (top, step)


def test_bars_stack_each_kind_from_the_axis_up_to_their_share_of_the_top():
    counts = {TODAY: Counter(deposits=3, transfers=1), DAYS[0]: Counter(deposits=2)}

    chart = movements_chart(DAYS, counts, KINDS, TODAY)

    assert len(chart.bars) == 30 and chart.total == 6
    today_bar = chart.bars[-1]
    assert today_bar.is_today and today_bar.total == 4 and today_bar.day == TODAY
    deposits, transfers = today_bar.segments
    plot = HEIGHT - TOP - BOTTOM  # the axis' top is 4: four movements fill it
    assert (deposits.kind, deposits.count, Decimal(deposits.height)) == ("deposits", 3, Decimal(plot * 3) / 4)
    assert Decimal(deposits.y) + Decimal(deposits.height) == Decimal(chart.baseline)
    assert Decimal(transfers.y) + Decimal(transfers.height) == Decimal(deposits.y)
    assert Decimal(transfers.y) == TOP
    assert today_bar.tooltip == "2026-12-05 (today, so far): 4 movements — Deposits and withdrawals 3, Transfers 1"
    assert chart.busiest is today_bar
    assert [tick.value for tick in chart.ticks] == [0, 1, 2, 3, 4]


def test_every_fifth_day_is_named_under_the_axis_counting_back_from_today():
    chart = movements_chart(DAYS, {}, KINDS, TODAY)

    assert [bar.label for bar in chart.bars if bar.label] == ["Nov 10", "Nov 15", "Nov 20", "Nov 25", "Nov 30", "Dec 5"]
    assert all(not bar.segments for bar in chart.bars)
    assert chart.busiest is None and chart.total == 0


def test_amounts_keep_every_digit_of_their_currency_with_thousands_separators():
    assert money(Decimal("1234567.5000"), 2) == "1,234,567.50"
    assert money(Decimal("1000"), 0) == "1,000"
    assert money(Decimal("12345678901234567890123456.1250"), 3) == "12,345,678,901,234,567,890,123,456.125"
    assert money(Decimal("0"), 2) == "0.00"
    assert count(1234567) == "1,234,567"
