"""Pagination shared by the list endpoints: `{next, previous, results}` (+ `count` where cheap)."""

from __future__ import annotations

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """For small per-user lists (wallets): count is cheap there."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class HistoryCursorPagination(pagination.CursorPagination):
    """Newest first over an index on (owner, created_at, id): a deep page costs what the first one does."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created_at", "-id")
