"""The admin's home page: the back office at a glance.

Each section shows only to a staff member who may open the admin pages it
summarises (the model admin's own view permission, so superusers and the
groups alike), and nothing of a hidden section is read.

What it costs. What needs attention (frozen wallets, failed webhooks,
unfunded cashback, reconcile) is read on every visit: each is a few rows
through an index. The figures that add up whole tables (money per currency,
the largest balances) and today's movements are kept in the cache for
`BACKOFFICE_DASHBOARD_CACHE_SECONDS`, shared by every staff member. A day of
the chart that has ended no longer changes (the ledger only grows, and its
entries are stamped when written), so each is read once and kept until it
leaves the chart: a visit reads at most today's entries from the ledger. The
cache is read in one round trip; without it (Redis down) every figure is
read from the database.
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
from loyalty.models import LoyaltyProgram, Reward
from transactions.models import Transaction
from wallets.models import Wallet, WalletBalance

logger = logging.getLogger(__name__)

CHART_DAYS = 30
LARGEST_PER_CURRENCY = 5
FROZEN_SHOWN = 10
# A day is settled this long after it ends: an entry stamped just before midnight has committed by then (a
# posting's transaction ends right after its INSERT). Until then it is read as today is.
SETTLED_AFTER = timedelta(minutes=5)
# A settled day is kept until it has left the chart.
SETTLED_DAY_SECONDS = (CHART_DAYS + 2) * 24 * 3600
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


class PageCache:
    """The cached figures of one page view: read in one round trip, and those read from the database written back
    in one per lifetime. A cache that does not answer is skipped."""

    def __init__(self, names: list[str]) -> None:
        self.pending: dict[int, dict[str, Any]] = {}
        try:
            self.found = cache.get_many([_KEY + name for name in names]) if names else {}
            self.up = True
        except RedisError:
            logger.warning("dashboard cache unavailable; every figure is read from the database")
            self.found, self.up = {}, False

    def get(self, name: str) -> Any:
        return self.found.get(_KEY + name)

    def put(self, name: str, value: Any, seconds: int) -> None:
        self.pending.setdefault(seconds, {})[_KEY + name] = value

    def save(self) -> None:
        if not self.up:
            return
        for seconds, values in self.pending.items():
            try:
                cache.set_many(values, timeout=seconds)
            except RedisError:
                return

    def figure(self, name: str, read: Callable[[], Any], seconds: int) -> Figure:
        """The cached figure, or one read now (and kept for `seconds`)."""
        figure = self.get(name)
        if not isinstance(figure, Figure):
            figure = Figure(value=read(), read_at=timezone.now())
            self.put(name, figure, seconds)
        return figure


def _may_view(request: HttpRequest, site: AdminSite, model: type[Model]) -> bool:
    """Whether the staff member may open `model`'s admin pages: the same test as the admin's own."""
    if not site.is_registered(model):
        return False
    return site.get_model_admin(model).has_view_permission(request)


def dashboard_context(request: HttpRequest, site: AdminSite) -> dict[str, Any]:
    """Everything the home page's template shows, for this staff member; a section they may not see is None
    and is not read."""
    now = timezone.now()
    may = {model: _may_view(request, site, model) for model in SECTION_MODELS}
    today = now.astimezone(UTC).date()
    days = [today - timedelta(days=back) for back in range(CHART_DAYS - 1, -1, -1)]
    settled = [day for day in days if _midnight(day + timedelta(days=1)) + SETTLED_AFTER <= now]
    live = days[len(settled) :]

    names = []
    if may[WalletBalance]:
        names += ["holdings", "largest"]
    if may[Transaction]:
        names += [f"movements:{day}" for day in settled] + [f"movements:live:{live[0]}"]
    store = PageCache(names)
    short = settings.BACKOFFICE_DASHBOARD_CACHE_SECONDS

    context: dict[str, Any] = {
        "dashboard_now": now,
        "dashboard_sections": any(may.values()),
        "may_view_users": _may_view(request, site, User),
        "may_view_rewards": _may_view(request, site, Reward),
        "can_adjust": request.user.has_perm("wallets.adjust_balance"),
        "largest_per_currency": LARGEST_PER_CURRENCY,
        "holdings": None,
        "largest": None,
        "chart": None,
        "frozen": selectors.frozen_wallets(shown=FROZEN_SHOWN) if may[Wallet] else None,
        "webhooks": selectors.failed_deliveries() if may[WebhookDelivery] else None,
        "disabled_endpoints": selectors.disabled_endpoints() if may[WebhookEndpoint] else None,
        "unfunded": selectors.unfunded_programs() if may[LoyaltyProgram] else None,
        "reconcile": None,
        "reconcile_overdue": None,
    }
    if may[WalletBalance]:
        context["holdings"] = store.figure("holdings", selectors.holdings_by_currency, short)
        largest = partial(selectors.largest_balances, per_currency=LARGEST_PER_CURRENCY)
        context["largest"] = store.figure("largest", largest, short)
    if may[Transaction]:
        counts = _settled_counts(store, settled)
        current = store.figure(f"movements:live:{live[0]}", partial(_movements, live[0], today), short)
        context["chart"] = _chart(days, {**counts, **current.value}, today)
        context["chart_kinds"] = [(slug, name) for slug, name, _ in selectors.MOVEMENT_KINDS]
        context["chart_read_at"] = current.read_at
    if context["unfunded"] is not None:
        context["unfunded_rewards"] = sum(program.unfunded_count for program in context["unfunded"])
    if may[ReconcileRun]:
        run = selectors.last_reconcile_run()
        context["reconcile"] = run
        context["reconcile_overdue"] = run is None or now - run.finished_at > RECONCILE_DUE_AFTER
    store.save()
    return context


def _settled_counts(store: PageCache, settled: list[date]) -> dict[date, Counter[str]]:
    """The settled days' counts: from the cache, and those it lacks in one read of the ledger (kept until they
    leave the chart). In steady state each day is read once, the first visit after it settles."""
    counts: dict[date, Counter[str]] = {}
    missing = []
    for day in settled:
        kept = store.get(f"movements:{day}")
        if isinstance(kept, Counter):
            counts[day] = kept
        else:
            missing.append(day)
    if missing:
        read = _movements(missing[0], missing[-1])
        for day in missing:
            counts[day] = read.get(day, Counter())
            store.put(f"movements:{day}", counts[day], SETTLED_DAY_SECONDS)
    return counts


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _movements(first: date, last: date) -> dict[date, Counter[str]]:
    """The chart's counts of the UTC days from `first` to `last`, both included."""
    return selectors.movements_by_day(since=_midnight(first), until=_midnight(last + timedelta(days=1)))


def _chart(days: list[date], counts: dict[date, Counter[str]], today: date) -> Chart:
    kinds = [(slug, name) for slug, name, _ in selectors.MOVEMENT_KINDS]
    return movements_chart(days, counts, kinds, today)
