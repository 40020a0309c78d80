"""Wallet, balance, currency and rate endpoints (API.md, "Wallets and balances")."""

from __future__ import annotations

from http import HTTPStatus

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from transactions.statements.instants import INVALID_INSTANT
from transactions.statements.selectors import balance_as_of
from transactions.statements.serializers import BalanceAsOfOutputSerializer, BalanceQuerySerializer
from wallet_project.schema import error_responses, request_example, response_example, success
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

BALANCE_EXAMPLE = {
    "id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22",
    "wallet_id": "0b0c6f1e-6d1f-4c55-9a57-3f8f2a7f1c11",
    "currency": "USD",
    "amount": "125.50",
    "held": "20.00",
    "available": "105.50",
    "updated_at": "2026-11-25T10:05:00Z",
}
BALANCE_AS_OF_EXAMPLE = {
    "id": BALANCE_EXAMPLE["id"],
    "wallet_id": BALANCE_EXAMPLE["wallet_id"],
    "currency": "USD",
    "amount": "80.25",
    "updated_at": "2026-10-31T17:42:10.512203Z",
    "as_of": "2026-11-01T00:00:00Z",
}
WALLET_EXAMPLE = {
    "id": "0b0c6f1e-6d1f-4c55-9a57-3f8f2a7f1c11",
    "name": "Travel",
    "is_frozen": False,
    "created_at": "2026-11-25T10:00:00Z",
    "balances": [BALANCE_EXAMPLE],
}
# The errors every authenticated read can give.
READ_ERRORS = (401, 429, 503)


@extend_schema(tags=["wallets"])
@extend_schema_view(
    list=extend_schema(
        summary="List my wallets",
        description="The caller's wallets with their balances, oldest first, paginated by `page` (and "
        "`page_size`, at most 200): `{count, next, previous, results}`. A malformed or out-of-range `page` "
        "answers 400.",
        responses={
            200: success(WalletOutputSerializer(many=True), "A page of the caller's wallets."),
            **error_responses(400, *READ_ERRORS, invalid={"page": ["Invalid page."]}),
        },
        examples=[response_example(WALLET_EXAMPLE, "Wallets")],
    ),
    create=extend_schema(
        summary="Create a wallet",
        description="Creates an empty wallet; open balances in it with `POST wallets/{id}/balances/`. "
        "Wallet names are unique per user (409 `wallet_exists`).",
        request=WalletCreateInputSerializer,
        responses={
            201: success(WalletOutputSerializer, "Created: the new wallet, with no balances yet."),
            **error_responses(
                400, 401, 409, 429, 503, codes={409: ["wallet_exists"]}, invalid={"name": ["This field is required."]}
            ),
        },
        examples=[
            request_example({"name": "Travel"}),
            response_example({**WALLET_EXAMPLE, "balances": []}, "Created", status=201),
        ],
    ),
    retrieve=extend_schema(
        summary="Get a wallet",
        description="One of the caller's wallets with its balances; another user's wallet answers 404.",
        responses={
            200: success(WalletOutputSerializer, "The wallet with its balances."),
            **error_responses(401, 404, 429, 503),
        },
        examples=[response_example(WALLET_EXAMPLE, "Wallet")],
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
        description="One balance per currency (409 `balance_exists`). A non-zero `initial_amount` (default 0) "
        "is booked as a DEPOSIT entry, never written straight into the balance: like any movement it may answer "
        "503 `service_unavailable` or 429 `lock_timeout` (retry after `Retry-After`), and is refused on a "
        "frozen wallet (422 `wallet_frozen`). An unknown currency answers 400.",
        request=BalanceCreateInputSerializer,
        responses={
            201: success(BalanceOutputSerializer, "Opened: the new balance, holding `initial_amount` (or 0)."),
            **error_responses(
                400,
                401,
                404,
                409,
                422,
                429,
                503,
                codes={409: ["balance_exists"], 422: ["wallet_frozen"], 429: ["lock_timeout", "throttled"]},
                invalid={"currency": ["Unknown currency 'XYZ'."]},
            ),
        },
        examples=[
            request_example({"currency": "USD", "initial_amount": "125.50"}, "Open"),
            response_example(BALANCE_EXAMPLE, "Opened", status=201),
        ],
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
        parameters=[TotalBalanceQuerySerializer],
        responses={
            200: success(TotalBalanceOutputSerializer, "The total and the rates used."),
            **error_responses(
                400,
                401,
                404,
                422,
                429,
                503,
                codes={422: ["rate_unavailable"]},
                invalid={"currency": ["This field is required."]},
            ),
        },
        examples=[
            response_example(
                {
                    "wallet_id": WALLET_EXAMPLE["id"],
                    "currency": "EUR",
                    "total": "114.20",
                    "rates": [{"from": "USD", "to": "EUR", "rate": "0.91"}],
                },
                "Total in EUR",
            )
        ],
    )
    @action(detail=True, methods=["get"], url_path="total-balance")
    def total_balance(self, request: Request, pk: str) -> Response:
        query = TotalBalanceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        wallet = selectors.wallet_get(owner=request.user, wallet_id=pk)
        currency = selectors.currency_get(code=query.validated_data["currency"])
        total = selectors.wallet_total_balance(wallet=wallet, currency=currency)
        return Response(TotalBalanceOutputSerializer(total).data)


@extend_schema(tags=["wallets"])
class BalanceViewSet(viewsets.GenericViewSet):
    serializer_class = BalanceOutputSerializer
    lookup_value_regex = UUID_LOOKUP

    @extend_schema(
        summary="Get a balance",
        description="One of the caller's balances; another user's balance answers 404. With `as_of`, the balance "
        "as it was at that instant, from its ledger: the `balance_after` of the last entry created at or before it "
        "(0 before the first), with `as_of` the instant answered (now, for a later one); `held` and `available` "
        "are not part of that answer, since reservations are not in the ledger. A malformed `as_of` answers 400.",
        parameters=[BalanceQuerySerializer],
        responses={
            200: success(
                PolymorphicProxySerializer(
                    component_name="BalanceNowOrAsOf",
                    serializers=[BalanceOutputSerializer, BalanceAsOfOutputSerializer],
                    resource_type_field_name=None,
                ),
                "The balance now, or as of `as_of`.",
            ),
            **error_responses(400, 401, 404, 429, 503, invalid={"as_of": [INVALID_INSTANT]}),
        },
        examples=[
            response_example(BALANCE_EXAMPLE, "Balance"),
            response_example(BALANCE_AS_OF_EXAMPLE, "Balance as of an instant"),
        ],
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        query = BalanceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        instant = query.validated_data.get("as_of")
        if instant is None:
            return Response(BalanceOutputSerializer(selectors.balance_get(owner=request.user, balance_id=pk)).data)
        answer = balance_as_of(owner=request.user, balance_id=pk, instant=instant)
        return Response(BalanceAsOfOutputSerializer(answer).data)


@extend_schema(tags=["wallets"])
class CurrencyViewSet(viewsets.GenericViewSet):
    serializer_class = CurrencyOutputSerializer
    pagination_class = None

    @extend_schema(
        summary="List currencies",
        description="Every currency the service knows, with its minor unit (decimals), by code. A plain array.",
        responses={
            200: success(CurrencyOutputSerializer(many=True), "Every currency."),
            **error_responses(*READ_ERRORS),
        },
        examples=[response_example({"code": "USD", "name": "US Dollar", "minor_unit": 2}, "Currencies")],
    )
    def list(self, request: Request) -> Response:
        return Response(CurrencyOutputSerializer(Currency.objects.order_by("code"), many=True).data)


@extend_schema(tags=["wallets"])
class RateViewSet(viewsets.GenericViewSet):
    serializer_class = RateOutputSerializer
    pagination_class = None

    @extend_schema(
        summary="List current exchange rates",
        description="The current rate of every ordered pair (optionally of one base currency). "
        "Rates are exact decimals; every ordered pair has its own rate. A plain array. An unknown `base` "
        "answers 400.",
        parameters=[RatesQuerySerializer],
        responses={
            200: success(RateOutputSerializer(many=True), "The current rates."),
            **error_responses(400, *READ_ERRORS, invalid={"base": ["Unknown currency 'XYZ'."]}),
        },
        examples=[
            response_example(
                {"base": "USD", "quote": "EUR", "rate": "0.91", "valid_from": "2026-11-25T00:00:00Z"}, "Rates"
            )
        ],
    )
    def list(self, request: Request) -> Response:
        query = RatesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        base = query.validated_data.get("base")
        if base:
            selectors.currency_get(code=base, field="base")
        return Response(RateOutputSerializer(selectors.current_rates(base=base), many=True).data)
