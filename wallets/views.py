"""Wallet, balance, currency and rate endpoints (API.md, "Wallets and balances")."""

from __future__ import annotations

from http import HTTPStatus

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from wallet_project.schema import error_responses
from wallets import selectors, services
from wallets.models import Currency
from wallets.serializers import (
    BalanceCreateInputSerializer,
    BalanceOutputSerializer,
    CurrencyOutputSerializer,
    RateOutputSerializer,
    RatesQuerySerializer,
    TotalBalanceOutputSerializer,
    TotalBalanceQuerySerializer,
    WalletCreateInputSerializer,
    WalletOutputSerializer,
)

UUID_LOOKUP = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

WALLET_EXAMPLE = {
    "id": "0b0c6f1e-6d1f-4c55-9a57-3f8f2a7f1c11",
    "name": "Travel",
    "is_frozen": False,
    "created_at": "2026-11-25T10:00:00Z",
    "balances": [
        {
            "id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22",
            "wallet_id": "0b0c6f1e-6d1f-4c55-9a57-3f8f2a7f1c11",
            "currency": "USD",
            "amount": "125.50",
            "updated_at": "2026-11-25T10:05:00Z",
        }
    ],
}


@extend_schema_view(
    list=extend_schema(
        summary="List my wallets",
        description="The caller's wallets with their balances, oldest first, paginated. "
        "A malformed or out-of-range `page` answers 400.",
        responses={200: WalletOutputSerializer(many=True), **error_responses(400, 401)},
    ),
    create=extend_schema(
        summary="Create a wallet",
        description="Wallet names are unique per user.",
        request=WalletCreateInputSerializer,
        responses={201: WalletOutputSerializer, **error_responses(400, 401, 409, codes={409: ["wallet_exists"]})},
        examples=[
            OpenApiExample("Create", value={"name": "Travel"}, request_only=True),
            OpenApiExample(
                "Created", value={**WALLET_EXAMPLE, "balances": []}, response_only=True, status_codes=["201"]
            ),
        ],
    ),
    retrieve=extend_schema(
        summary="Get a wallet",
        description="One of the caller's wallets with its balances; another user's wallet answers 404.",
        responses={200: WalletOutputSerializer, **error_responses(401, 404)},
        examples=[OpenApiExample("Wallet", value=WALLET_EXAMPLE, response_only=True)],
    ),
)
class WalletViewSet(viewsets.GenericViewSet):
    serializer_class = WalletOutputSerializer
    lookup_value_regex = UUID_LOOKUP

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.wallet_list(owner=self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WalletOutputSerializer(page, many=True).data)

    def create(self, request: Request) -> Response:
        serializer = WalletCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        wallet = services.wallet_create(owner=request.user, name=serializer.validated_data["name"])
        wallet = selectors.wallet_get(owner=request.user, wallet_id=wallet.pk)
        return Response(WalletOutputSerializer(wallet).data, status=HTTPStatus.CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        wallet = selectors.wallet_get(owner=request.user, wallet_id=pk)
        return Response(WalletOutputSerializer(wallet).data)

    @extend_schema(
        summary="Open a balance in a wallet",
        description="One balance per currency. A non-zero `initial_amount` is booked as a DEPOSIT entry, "
        "never written straight into the balance.",
        request=BalanceCreateInputSerializer,
        responses={
            201: BalanceOutputSerializer,
            **error_responses(
                400, 401, 404, 409, 422, 429, 503, codes={409: ["balance_exists"], 422: ["wallet_frozen"]}
            ),
        },
        examples=[OpenApiExample("Open", value={"currency": "USD", "initial_amount": "100.00"}, request_only=True)],
    )
    @action(detail=True, methods=["post"], url_path="balances")
    def balances(self, request: Request, pk: str) -> Response:
        serializer = BalanceCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        balance = services.balance_create(
            wallet_id=pk,
            owner=request.user,
            currency=serializer.validated_data["currency"],
            initial_amount=serializer.validated_data.get("initial_amount"),
            created_by=request.user,
        )
        return Response(BalanceOutputSerializer(balance).data, status=HTTPStatus.CREATED)

    @extend_schema(
        summary="Total of a wallet in one currency",
        description="Every balance converted exactly at the current rates, summed, and rounded down once "
        "to the target currency's minor unit. The rates used are listed.",
        parameters=[OpenApiParameter("currency", str, required=True, description="ISO 4217 code, e.g. EUR")],
        responses={
            200: TotalBalanceOutputSerializer,
            **error_responses(400, 401, 404, 422, codes={422: ["rate_unavailable"]}),
        },
    )
    @action(detail=True, methods=["get"], url_path="total-balance")
    def total_balance(self, request: Request, pk: str) -> Response:
        query = TotalBalanceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        wallet = selectors.wallet_get(owner=request.user, wallet_id=pk)
        currency = selectors.currency_get(code=query.validated_data["currency"])
        total = selectors.wallet_total_balance(wallet=wallet, currency=currency)
        return Response(TotalBalanceOutputSerializer(total).data)


class BalanceViewSet(viewsets.GenericViewSet):
    serializer_class = BalanceOutputSerializer
    lookup_value_regex = UUID_LOOKUP

    @extend_schema(
        summary="Get a balance",
        description="One of the caller's balances; another user's balance answers 404.",
        responses={200: BalanceOutputSerializer, **error_responses(401, 404)},
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(BalanceOutputSerializer(selectors.balance_get(owner=request.user, balance_id=pk)).data)


class CurrencyViewSet(viewsets.GenericViewSet):
    serializer_class = CurrencyOutputSerializer
    pagination_class = None

    @extend_schema(
        summary="List currencies",
        description="Every currency the service knows, with its minor unit (decimals). A plain array.",
        responses={200: CurrencyOutputSerializer(many=True), **error_responses(401)},
    )
    def list(self, request: Request) -> Response:
        return Response(CurrencyOutputSerializer(Currency.objects.order_by("code"), many=True).data)


class RateViewSet(viewsets.GenericViewSet):
    serializer_class = RateOutputSerializer
    pagination_class = None

    @extend_schema(
        summary="List current exchange rates",
        description="The current rate of every ordered pair (optionally of one base currency). "
        "Rates are exact decimals; every ordered pair has its own rate. A plain array.",
        parameters=[OpenApiParameter("base", str, required=False, description="ISO 4217 code, e.g. USD")],
        responses={200: RateOutputSerializer(many=True), **error_responses(400, 401)},
    )
    def list(self, request: Request) -> Response:
        query = RatesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        base = query.validated_data.get("base")
        if base:
            selectors.currency_get(code=base, field="base")
        return Response(RateOutputSerializer(selectors.current_rates(base=base), many=True).data)
