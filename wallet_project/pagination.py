"""Pagination shared by the list endpoints: `{next, previous, results}` (+ `count` where cheap).

A malformed `page`, `page_size` or `cursor` is the caller's input, so it
answers 400 `validation_error` in `details` under the parameter's name (DRF
answers 404 to a bad page or cursor, and ignores a bad page size).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from wallet_project.cursors import HistoryCursor

logger = logging.getLogger("wallet.errors")

# Numbers as the contract writes them: ASCII digits only (`int()` also takes "٣", "３", " 3", "+3" and "3_0").
_ASCII_DIGITS_RE = re.compile(r"[0-9]+")


def _page_size(pager: Any, request: Request) -> int:
    """The `page_size` asked for (at most `max_page_size`), the default when none; 400 when malformed."""
    raw = request.query_params.get(pager.page_size_query_param)
    if raw is None:
        return pager.page_size
    digits = raw.lstrip("0")
    if not _ASCII_DIGITS_RE.fullmatch(raw) or not digits:
        raise ValidationError({pager.page_size_query_param: ["A page size is a whole number from 1 up."]})
    # Compared as text first: int() refuses strings of more than 4,300 digits.
    return pager.max_page_size if len(digits) > 6 else min(int(digits), pager.max_page_size)


class PageNumberPagination(pagination.PageNumberPagination):
    """For small per-user lists (wallets): count is cheap there."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        return _page_size(self, request)

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        number = super().get_page_number(request, paginator)
        if number not in self.last_page_strings and not _ASCII_DIGITS_RE.fullmatch(str(number)):
            raise ValidationError({self.page_query_param: ["A page is a whole number from 1 up."]})
        return number

    def paginate_queryset(self, queryset, request, view=None):  # type: ignore[no-untyped-def]
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            raise ValidationError({self.page_query_param: [str(exc.detail)]}) from exc

    def get_paginated_response_schema(self, schema):  # type: ignore[no-untyped-def]
        """DRF's schema, with this service's links as the examples (documentation only)."""
        paginated = super().get_paginated_response_schema(schema)
        links = paginated["properties"]
        links["count"]["example"] = 51
        links["next"]["example"] = "https://wallet.example.com/api/v1/wallets/?page=2"
        links["previous"]["example"] = None
        return paginated


class HistoryCursorPagination(pagination.CursorPagination):
    """Newest first, by keyset on (created_at, id): a unique, total order, so ties in time lose no entry.

    Both link directions start strictly after a real entry's (created_at, id),
    and the history indexes end in (created_at, id): a deep page costs what the
    first one does, and paging either way across entries that share a
    `created_at` shows each once.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created_at", "-id")
    invalid_cursor_message = "Invalid cursor: use the `next` and `previous` links as given."

    def get_page_size(self, request: Request) -> int:
        return _page_size(self, request)

    def decode_cursor(self, request: Request) -> HistoryCursor | None:  # type: ignore[override]
        token = request.query_params.get(self.cursor_query_param)
        if token is None:
            return None
        try:
            return HistoryCursor.decode(token)
        except (ValueError, OverflowError) as exc:
            logger.warning("malformed cursor", extra={"error": type(exc).__name__})
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from exc

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list[Any]:
        self.request = request
        self.base_url = request.build_absolute_uri()
        self.page_size = self.get_page_size(request)
        self.cursor = self.decode_cursor(request)
        backwards = self.cursor is not None and self.cursor.backwards
        if self.cursor is not None and self.cursor.created_at is not None:
            queryset = queryset.filter(self.cursor.beyond())
        queryset = queryset.order_by("created_at", "id") if backwards else queryset.order_by("-created_at", "-id")
        rows = list(queryset[: self.page_size + 1])
        more = len(rows) > self.page_size
        page = rows[: self.page_size]
        if backwards:
            page.reverse()
            # There is a page after this one exactly when the cursor stands on an entry.
            self.has_next, self.has_previous = self.cursor.created_at is not None, more  # type: ignore[union-attr]
        else:
            self.has_next, self.has_previous = more, self.cursor is not None
        self.page = page
        return page

    def _link(self, cursor: HistoryCursor | None) -> str:
        if cursor is None:
            return remove_query_param(self.base_url, self.cursor_query_param)
        return replace_query_param(self.base_url, self.cursor_query_param, cursor.encode())

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        if not self.page:
            # Nothing newer than a backwards cursor: the newest entries are the first page.
            return self._link(None)
        last = self.page[-1]
        return self._link(HistoryCursor(backwards=False, created_at=last.created_at, entry_id=last.pk))

    def get_previous_link(self) -> str | None:
        if not self.has_previous:
            return None
        if not self.page:
            # Nothing older than a forward cursor: the oldest entries are the last page.
            return self._link(HistoryCursor(backwards=True))
        first = self.page[0]
        return self._link(HistoryCursor(backwards=True, created_at=first.created_at, entry_id=first.pk))

    def get_paginated_response_schema(self, schema):  # type: ignore[no-untyped-def]
        """DRF's schema, with this service's links as the examples (documentation only)."""
        paginated = super().get_paginated_response_schema(schema)
        links = paginated["properties"]
        links["next"]["example"] = (
            "https://wallet.example.com/api/v1/transactions/?cursor="
            + HistoryCursor(
                backwards=False,
                created_at=datetime(2026, 11, 25, 10, 5, 0, 123456, tzinfo=UTC),
                entry_id=UUID("7a1d1c7e-2f7b-4a7e-8c53-6a0e4c1b9f10"),
            ).encode()
        )
        links["previous"]["example"] = None
        return paginated
