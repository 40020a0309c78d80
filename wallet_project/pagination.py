"""Pagination shared by the list endpoints: `{next, previous, results}` (+ `count` where cheap).

A malformed `page` or `cursor` is the caller's input, so it answers 400
`validation_error` (DRF answers 404).
"""

from __future__ import annotations

from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    """For small per-user lists (wallets): count is cheap there."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

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
    """Newest first over an index on (owner, created_at, id): a deep page costs what the first one does."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created_at", "-id")

    def decode_cursor(self, request):  # type: ignore[no-untyped-def]
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise ValidationError({self.cursor_query_param: [str(exc.detail)]}) from exc

    def get_paginated_response_schema(self, schema):  # type: ignore[no-untyped-def]
        """DRF's schema, with this service's links as the examples (documentation only)."""
        paginated = super().get_paginated_response_schema(schema)
        links = paginated["properties"]
        links["next"]["example"] = (
            "https://wallet.example.com/api/v1/transactions/?cursor=cD0yMDI2LTExLTI1KzEwJTNBMDU%3D"
        )
        links["previous"]["example"] = None
        return paginated
