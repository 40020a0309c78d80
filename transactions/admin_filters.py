"""The ledger changelist's filters that are not plain field choices.

The links that open the ledger narrowed to one balance, wallet or movement
(`?wallet_balance=…`, `?wallet=…`, `?reference=…`) go through these filters
rather than Django's raw lookups, so the narrowing shows in the sidebar with
its own "All" link and in "Clear all filters", and a search typed afterwards
visibly runs inside it. The date range takes two calendar days, both
included, in UTC. The holds list takes a balance's link through
`BalanceFilter` as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest

from transactions.models import Transaction
from wallet_project.admin_helpers import uuid_or_none
from wallets.models import Wallet, WalletBalance


class _OneIdFilter(admin.SimpleListFilter):
    """A filter on one id that arrives by link: shown only while it is applied, with what the id is."""

    field: str

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        raw = self.value()
        if raw is None:
            return []
        some_id = uuid_or_none(raw)
        return [(raw, self.describe(some_id) if some_id is not None else f"{raw} (not an id)")]

    def describe(self, some_id: UUID) -> str:
        raise NotImplementedError

    def queryset(self, request: HttpRequest, queryset: QuerySet[Transaction]) -> QuerySet[Transaction]:
        raw = self.value()
        if raw is None:
            return queryset
        some_id = uuid_or_none(raw)
        if some_id is None:
            return queryset.none()
        return queryset.filter(**{self.field: some_id})


class BalanceFilter(_OneIdFilter):
    title = "balance"
    parameter_name = "wallet_balance"
    field = "wallet_balance_id"

    def describe(self, some_id: UUID) -> str:
        balance = WalletBalance.objects.select_related("wallet__owner").filter(pk=some_id).first()
        if balance is None:
            return f"{some_id} (no such balance)"
        return f"{balance.wallet.name} · {balance.currency_id} ({balance.wallet.owner.email})"


class WalletFilter(_OneIdFilter):
    title = "wallet"
    parameter_name = "wallet"
    field = "wallet_id"

    def describe(self, some_id: UUID) -> str:
        wallet = Wallet.objects.select_related("owner").filter(pk=some_id).first()
        if wallet is None:
            return f"{some_id} (no such wallet)"
        return f"{wallet.name} ({wallet.owner.email})"


class ReferenceFilter(_OneIdFilter):
    title = "movement (reference)"
    parameter_name = "reference"
    field = "reference"

    def describe(self, some_id: UUID) -> str:
        return str(some_id)


def _day(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise IncorrectLookupParameters(f"{name}: use a date, YYYY-MM-DD") from exc


class CreatedDateRangeFilter(admin.ListFilter):
    """Entries created from one day to another, both days included (UTC): two date inputs in the sidebar."""

    title = "created at (UTC)"
    template = "admin/transactions/transaction/date_range_filter.html"
    start_parameter = "created_from"
    end_parameter = "created_to"

    def __init__(
        self, request: HttpRequest, params: dict[str, list[str]], model: type, model_admin: admin.ModelAdmin
    ) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.expected_parameters():
            if name in params:
                value = params.pop(name)[-1].strip()
                if value:
                    self.used_parameters[name] = _day(value, name)

    def expected_parameters(self) -> list[str]:
        return [self.start_parameter, self.end_parameter]

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[Transaction]) -> QuerySet[Transaction]:
        start = self.used_parameters.get(self.start_parameter)
        end = self.used_parameters.get(self.end_parameter)
        if start is not None:
            queryset = queryset.filter(created_at__gte=datetime.combine(start, time.min, tzinfo=UTC))
        if end is not None:
            queryset = queryset.filter(created_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC))
        return queryset

    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:
        """One choice: the form's current values, the other parameters it must keep, and the link that clears it."""
        start = self.used_parameters.get(self.start_parameter)
        end = self.used_parameters.get(self.end_parameter)
        mine = set(self.expected_parameters())
        yield {
            "selected": start is not None or end is not None,
            "start_parameter": self.start_parameter,
            "end_parameter": self.end_parameter,
            "start": start.isoformat() if start else "",
            "end": end.isoformat() if end else "",
            "kept": [(name, value) for name, value in changelist.params.items() if name not in mine],
            "clear_query_string": changelist.get_query_string(remove=list(mine)),
        }
