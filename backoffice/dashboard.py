"""The admin's home page: the back office at a glance.

Each section shows only to a staff member who may open the admin pages it
summarises (the model admin's own view permission, so superusers and the
groups alike), and nothing of a hidden section is read. The figures that add
up whole tables (money per currency, the largest balances, the movements
chart) are kept in the cache for `BACKOFFICE_DASHBOARD_CACHE_SECONDS`, shared
by every staff member; the chart's closed days, which no longer change, for an
hour. What needs attention (frozen wallets, failed webhooks, unfunded
cashback, reconcile) is read on every visit: each is a few rows of an index.
Without the cache (Redis down) every figure is read afresh.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.core.cache import cache
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from redis import RedisError

from accounts.models import User
from backoffice import selectors
from backoffice.chart import Chart, movements_chart
from backoffice.models import ReconcileRun
from events.models import WebhookDelivery, WebhookEndpoint
from loyalty.models import LoyaltyProgram
from transactions.models import Transaction
from wallets.models import Wallet, WalletBalance

logger = logging.getLogger(__name__)

CHART_DAYS = 30
LARGEST_PER_CURRENCY = 5
FROZEN_SHOWN = 10
# Closed days of the chart no longer change (the ledger is append-only): read again once an hour, which also
# catches an entry stamped just before midnight and committed just after the day was first read.
CLOSED_DAYS_SECONDS = 3600
# A reconcile older than this is shown as overdue (it is meant to run nightly).
RECONCILE_DUE_AFTER = timedelta(hours=26)
_KEY = "backoffice:dashboard:v1:"
# Whose admin pages each section summarises: it shows to whoever may view them.
SECTION_MODELS = (WalletBalance, Transaction, Wallet, WebhookDelivery, WebhookEndpoint, LoyaltyProgram, ReconcileRun)


@dataclass(frozen=True)
class Figure:
    """A figure with the time it was read: the page says how fresh each cached one is."""

    value: Any
    read_at: datetime


class FigureCache:
    """The cached figures of one page view: one round trip to read them all, one per lifetime to write the missing
    ones. A cache that does not answer is skipped: the figures are then read from the database."""

    def __init__(self, wanted: dict[str, tuple[Callable[[], Any], int]]) -> None:
        self.wanted = wanted  # key -> (how to read it, seconds to keep it)

    def figures(self) -> dict[str, Figure]:
        keys = [_KEY + name for name in self.wanted]
        cache_up = True
        try:
            found = cache.get_many(keys) if keys else {}
        except RedisError:
            logger.warning("dashboard cache unavailable; reading every figure from the database")
            found, cache_up = {}, False
        figures: dict[str, Figure] = {}
        missing: dict[int, dict[str, Figure]] = {}
        for name, (read, seconds) in self.wanted.items():
            figure = found.get(_KEY + name)
            if not isinstance(figure, Figure):
                figure = Figure(value=read(), read_at=timezone.now())
                missing.setdefault(seconds, {})[_KEY + name] = figure
            figures[name] = figure
        if cache_up:
            for seconds, batch in missing.items():
                try:
                    cache.set_many(batch, timeout=seconds)
                except RedisError:
                    break
        return figures


def _may_view(request: HttpRequest, site: AdminSite, model: type[Model]) -> bool:
    """Whether the staff member may open `model`'s admin pages: the same test as the admin's own."""
    if not site.is_registered(model):
        return False
    return site.get_model_admin(model).has_view_permission(request)


def dashboard_context(request: HttpRequest, site: AdminSite) -> dict[str, Any]:
    """Everything the home page's template shows, for this staff member; a section they may not see is None
    and is not read."""
    now = timezone.now()
    today = now.astimezone(UTC).date()
    may = {model: _may_view(request, site, model) for model in SECTION_MODELS}
    days = [today - timedelta(days=back) for back in range(CHART_DAYS - 1, -1, -1)]
    closed_key, today_key = f"movements:{days[0]}:{today}", f"movements:{today}"

    short = settings.BACKOFFICE_DASHBOARD_CACHE_SECONDS
    wanted: dict[str, tuple[Callable[[], Any], int]] = {}
    if may[WalletBalance]:
        wanted["holdings"] = (selectors.holdings_by_currency, short)
        wanted["largest"] = (partial(selectors.largest_balances, per_currency=LARGEST_PER_CURRENCY), short)
    if may[Transaction]:
        wanted[closed_key] = (partial(_movements, days[0], today), CLOSED_DAYS_SECONDS)
        wanted[today_key] = (partial(_movements, today, today + timedelta(days=1)), short)
    figures = FigureCache(wanted).figures()

    context: dict[str, Any] = {
        "dashboard_now": now,
        "dashboard_sections": any(may.values()),
        "may_view_users": _may_view(request, site, User),
        "can_adjust": request.user.has_perm("wallets.adjust_balance"),
        "largest_per_currency": LARGEST_PER_CURRENCY,
        "holdings": figures.get("holdings"),
        "largest": figures.get("largest"),
        "chart": None,
        "frozen": selectors.frozen_wallets(shown=FROZEN_SHOWN) if may[Wallet] else None,
        "webhooks": selectors.failed_deliveries() if may[WebhookDelivery] else None,
        "disabled_endpoints": selectors.disabled_endpoints() if may[WebhookEndpoint] else None,
        "unfunded": selectors.unfunded_programs() if may[LoyaltyProgram] else None,
        "reconcile": None,
        "reconcile_overdue": None,
    }
    if may[Transaction]:
        closed, current = figures[closed_key], figures[today_key]
        context["chart"] = _chart(days, {**closed.value, **current.value}, today)
        context["chart_kinds"] = [(slug, name) for slug, name, _ in selectors.MOVEMENT_KINDS]
        context["chart_read_at"] = current.read_at
    if context["unfunded"] is not None:
        context["unfunded_rewards"] = sum(program.unfunded_count for program in context["unfunded"])
    if may[ReconcileRun]:
        run = selectors.last_reconcile_run()
        context["reconcile"] = run
        context["reconcile_overdue"] = run is None or now - run.finished_at > RECONCILE_DUE_AFTER
    return context


def _movements(first: date, end: date) -> dict[date, Counter[str]]:
    """The chart's counts of the days from `first` up to, not including, `end` (UTC)."""
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    until = datetime(end.year, end.month, end.day, tzinfo=UTC)
    return selectors.movements_by_day(since=since, until=until)


def _chart(days: list[date], counts: dict[date, Counter[str]], today: date) -> Chart:
    kinds = [(slug, name) for slug, name, _ in selectors.MOVEMENT_KINDS]
    return movements_chart(days, counts, kinds, today)
