"""Pagination shared by the list endpoints: `{next, previous, results}` (+ `count` where cheap).

A malformed `page`, `page_size` or `cursor` is the caller's input, so it
answers 400 `validation_error` in `details` under the parameter's name (DRF
answers 404 to a bad page or cursor, and caps a page size that is too large);
a page past the last one is an empty page, as every number the schema admits
(`page` from 1) is a page. The parameters' schemas say exactly that.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.core.paginator import Page as DjangoPage
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import pagination, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from wallet_project.cursors import HISTORY_CURSOR_PATTERN, HistoryCursor

logger = logging.getLogger("wallet.errors")

# Numbers as the contract writes them: ASCII digits only (`int()` also takes "٣", "３", " 3", "+3" and "3_0").
_ASCII_DIGITS_RE = re.compile(r"[0-9]+")
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
PAGE_SIZE_MESSAGE = f"A page size is a whole number from 1 to {MAX_PAGE_SIZE}."
PAGE_MESSAGE = "A page is a whole number from 1 up."


def whole_number(raw: str, *, least: int, most: int | None = None) -> int | None:
    """`raw` as a whole number of ASCII digits from `least` to `most`, or None; a number too long for `int()`
    counts as more than `most` (and, without one, as more than anything)."""
    if not _ASCII_DIGITS_RE.fullmatch(raw):
        return None
    digits = raw.lstrip("0") or "0"
    # Compared as text first: int() refuses strings of more than 4,300 digits.
    if len(digits) > 18:
        return None if most is not None else 10**18
    number = int(digits)
    if number < least or (most is not None and number > most):
        return None
    return number


def page_size_of(raw: str | None) -> int:
    """The `page_size` asked for, the default when none; 400 when it is not a whole number from 1 to 200."""
    if raw is None:
        return DEFAULT_PAGE_SIZE
    size = whole_number(raw, least=1, most=MAX_PAGE_SIZE)
    if size is None:
        raise ValidationError({"page_size": [PAGE_SIZE_MESSAGE]})
    return size


PAGE_SIZE_PARAMETER = OpenApiParameter(
    "page_size",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
    location=OpenApiParameter.QUERY,
    description=f"How many items a page holds: 1 to {MAX_PAGE_SIZE}, {DEFAULT_PAGE_SIZE} by default.",
)
PAGE_PARAMETER = OpenApiParameter(
    "page",
    {"type": "integer", "minimum": 1, "default": 1},
    location=OpenApiParameter.QUERY,
    description="The page, from 1; a page past the last one is empty.",
)
CURSOR_PARAMETER = OpenApiParameter(
    "cursor",
    {"type": "string", "pattern": HISTORY_CURSOR_PATTERN},
    location=OpenApiParameter.QUERY,
    description="Where the page starts: the `cursor` of a `next` or `previous` link. `n` (older entries) or "
    "`p` (newer ones), then the position of the entry the page starts beyond: its `created_at` in microseconds "
    "since 1970 and its id without hyphens; a lone `p` is the page of the oldest entries.",
)
CURSOR_PARAMETERS = [CURSOR_PARAMETER, PAGE_SIZE_PARAMETER]


def _parameters_schema(parameters: list[OpenApiParameter]) -> list[dict[str, Any]]:
    """The parameters as the paginators give them to drf-spectacular (`get_schema_operation_parameters`)."""
    return [
        {
            "name": parameter.name,
            "required": False,
            "in": "query",
            "description": parameter.description,
            "schema": dict(parameter.type),
        }
        for parameter in parameters
    ]


class PageNumberPagination(pagination.PageNumberPagination):
    """For small per-user lists (wallets): count is cheap there. A page past the last one is empty."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    last_page_strings = ()

    def get_page_size(self, request: Request) -> int:
        return page_size_of(request.query_params.get(self.page_size_query_param))

    def paginate_queryset(self, queryset, request, view=None):  # type: ignore[no-untyped-def]
        self.request = request
        page_size = self.get_page_size(request)
        raw = request.query_params.get(self.page_query_param)
        number = 1 if raw is None else whole_number(raw, least=1)
        if number is None:
            raise ValidationError({self.page_query_param: [PAGE_MESSAGE]})
        paginator = self.django_paginator_class(queryset, page_size)
        # Past the last page there is nothing: an empty page, whose `previous` is the last one.
        self.page = DjangoPage([], number, paginator) if number > paginator.num_pages else paginator.page(number)
        return list(self.page)

    def get_previous_link(self) -> str | None:
        if not self.page.has_previous():
            return None
        url = self.request.build_absolute_uri()
        previous = min(self.page.number - 1, self.page.paginator.num_pages)
        if previous == 1:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, previous)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return _parameters_schema([PAGE_PARAMETER, PAGE_SIZE_PARAMETER])

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

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-created_at", "-id")
    invalid_cursor_message = "Invalid cursor: use the `next` and `previous` links as given."

    def get_page_size(self, request: Request) -> int:
        return page_size_of(request.query_params.get(self.page_size_query_param))

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return _parameters_schema(CURSOR_PARAMETERS)

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


@extend_schema_field(PAGE_SIZE_PARAMETER.type)
class PageSizeField(serializers.Field):
    """`page_size` in a query serializer, read as the paginators read it."""

    def to_internal_value(self, data: Any) -> int:
        size = whole_number(data, least=1, most=MAX_PAGE_SIZE) if isinstance(data, str) else None
        if size is None:
            raise serializers.ValidationError(PAGE_SIZE_MESSAGE)
        return size
