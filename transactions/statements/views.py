"""`GET balances/{id}/statement/`: a balance's statement over a period, in JSON, CSV or PDF, streamed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from transactions.statements import selectors
from transactions.statements.csv_format import CsvStatement
from transactions.statements.json_format import JsonStatement
from transactions.statements.serializers import StatementJsonSerializer, StatementQuerySerializer
from transactions.statements.streaming import StatementWriter, statement_response
from transactions.views import entry_example
from wallet_project.replicas.reads import replica_alias
from wallet_project.schema import error_responses, response_example


def pdf_statement(statement: selectors.Statement) -> StatementWriter:
    """The PDF writer, imported at the first PDF statement: reportlab and Pillow, which it imports, are about
    6 MB that a web worker would otherwise hold for a rare request (docs/PERFORMANCE.md, "Worker memory")."""
    from transactions.statements.pdf_format import PdfStatement

    return PdfStatement(statement)


WRITERS: dict[str, Callable[[selectors.Statement], StatementWriter]] = {
    "json": JsonStatement,
    "csv": CsvStatement,
    "pdf": pdf_statement,
}

STATEMENT_EXAMPLE = {
    "balance_id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22",
    "wallet_id": "0b0c6f1e-6d1f-4c55-9a57-3f8f2a7f1c11",
    "currency": "USD",
    "holder": {"name": "Dana", "email": "dana@example.com"},
    "from": "2026-11-01T00:00:00Z",
    "to": "2026-12-01T00:00:00Z",
    "generated_at": "2026-12-02T09:30:00.120000Z",
    "opening_balance": "120.50",
    "entries": [
        entry_example(type="DEPOSIT", amount="30.00", balance_after="150.50", sequence=6),
        entry_example(type="PAYMENT", amount="25.00", balance_after="125.50", sequence=7, merchant="Grocer"),
    ],
    "totals": [
        {"type": "DEPOSIT", "direction": "credit", "count": 1, "amount": "30.00"},
        {"type": "PAYMENT", "direction": "debit", "count": 1, "amount": "25.00"},
    ],
    "total_credits": "30.00",
    "total_debits": "25.00",
    "closing_balance": "125.50",
}


class ErrorsInJson(BaseContentNegotiation):
    """Errors are JSON whatever the request asks for. DRF would read `?format=csv` as a renderer's name and
    answer 404 for want of one; here `format` is the statement's, and the statement is no DRF Response."""

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        renderer = renderers[0]
        return renderer, renderer.media_type

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None


class StatementView(APIView):
    content_negotiation_class = ErrorsInJson

    @extend_schema(
        tags=["wallets"],
        operation_id="api_v1_balances_statement_retrieve",
        summary="A balance's statement",
        description="One of your balances over a period of at most 366 days (`from` inclusive, `to` exclusive; a "
        "`to` later than now means now): the opening balance, every entry of the period oldest first, the totals "
        "by type and the closing balance, in JSON, CSV or PDF (`format`). Opening + credits − debits = closing is "
        "checked while the statement is written: one that does not add up is cut off (an incomplete body), never "
        "sent whole. The body is streamed, so a long period starts arriving at once. CSV: one header, a `record` "
        "column (`opening`, `entry`, `total`, `closing`). PDF: A4, a header with the holder, the currency and the "
        "period on every page. A period that ends before it starts, starts in the future or is longer than 366 "
        "days answers 400; another user's balance 404.",
        parameters=[
            OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="One of your balances."),
            StatementQuerySerializer,
        ],
        responses={
            (200, "application/json"): OpenApiResponse(StatementJsonSerializer, description="The statement."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The statement as CSV (an attachment)."),
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The statement as a PDF (an attachment)."
            ),
            **error_responses(400, 401, 404, 429, 503, invalid={"to": ["A statement covers at most 366 days."]}),
        },
        examples=[response_example(STATEMENT_EXAMPLE, "Statement")],
    )
    def get(self, request: Request, id: str) -> Any:
        query = StatementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        period = query.validated_data
        # A statement tolerates a replica's lag (the caller's own recent writes read the primary); its entries are
        # read from the same database as it streams, with no second try if that replica is lost meanwhile.
        statement = selectors.statement_get(
            owner=request.user,
            balance_id=id,
            start=period["from"],
            end=period["to"],
            using=replica_alias(reader=request.user),
        )
        writer = WRITERS[period["format"]](statement)
        return statement_response(statement, writer, request_id=getattr(request, "request_id", None))
