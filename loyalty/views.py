"""The loyalty endpoints: `GET /api/v1/loyalty/` (your cashback per currency) and `GET /api/v1/loyalty/rewards/`.

Reads only, each the caller's own: another user's rewards are never listed.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty import selectors
from loyalty.rendering import rewards_representation
from loyalty.serializers import LoyaltySummarySerializer, RewardOutputSerializer, RewardQuerySerializer
from wallet_project.money import format_amount
from wallet_project.pagination import HistoryCursorPagination
from wallet_project.schema import error_responses, response_example, success
from wallets.selectors import minor_unit_of

PROGRAM_EXAMPLE = {"id": "01938f20-1111-7a2b-8c3d-4e5f6a7b8c9d", "name": "Cashback 2026"}
REWARD_EXAMPLE = {
    "id": "01938f2a-7c1e-7d3a-9b4e-5f6a7b8c9d1f",
    "payment_id": "7a1d1c7e-2f7b-4a7e-8c53-6a0e4c1b9f10",
    "reference": "c2b1f0de-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
    "wallet_balance_id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22",
    "currency": "USD",
    "amount": "0.12",
    "reversed_amount": "0.00",
    "unreversed_amount": "0.00",
    "net_amount": "0.12",
    "status": "booked",
    "program": PROGRAM_EXAMPLE,
    "created_at": "2026-12-05T10:00:00.123456Z",
    "booked_at": "2026-12-05T10:00:01.004512Z",
}
SUMMARY_EXAMPLE = [{"currency": "USD", "earned": "4.20", "reversed": "0.12", "net": "4.08", "pending": "0.30"}]


@extend_schema(tags=["loyalty"])
class LoyaltySummaryView(APIView):
    @extend_schema(
        summary="My cashback per currency",
        description="For each currency you have earned cashback in: `earned` (booked, or pending and booked "
        "within seconds), `reversed` (taken back by refunds, in proportion to what was refunded), `net` "
        "(what you keep) and `pending` (of `net`, not on your balance yet). Cashback a programme's funding "
        "could not cover was not earned and is not counted. A plain array, one item per currency.",
        responses={
            200: success(LoyaltySummarySerializer(many=True), "Your cashback per currency."),
            **error_responses(401, 429, 503),
        },
        examples=[response_example(SUMMARY_EXAMPLE, "Cashback")],
    )
    def get(self, request: Request) -> Response:
        return Response(
            [
                {
                    "currency": totals.currency,
                    "earned": format_amount(totals.earned, minor_unit_of(totals.currency)),
                    "reversed": format_amount(totals.reversed, minor_unit_of(totals.currency)),
                    "net": format_amount(totals.net, minor_unit_of(totals.currency)),
                    "pending": format_amount(totals.pending, minor_unit_of(totals.currency)),
                }
                for totals in selectors.loyalty_totals(owner=request.user)
            ]
        )


@extend_schema(tags=["loyalty"])
class RewardViewSet(viewsets.GenericViewSet):
    serializer_class = RewardOutputSerializer
    pagination_class = HistoryCursorPagination

    @extend_schema(
        summary="My cashback rewards",
        description="The cashback each of your payments (and captures) earned, newest first, cursor-paginated: "
        "`{next, previous, results}`, follow the links (`page_size` at most 200). A reward is `pending` from "
        "its payment until the worker books it (within seconds), then `booked` as a LOYALTY entry on your "
        "balance with the payment's `reference`; `unfunded` when the programme's funding could not cover it. "
        "Refunds take cashback back in proportion (`reversed_amount`).",
        parameters=[RewardQuerySerializer],
        responses={
            200: success(RewardOutputSerializer(many=True), "A page of your rewards, newest first."),
            **error_responses(400, 401, 429, 503, invalid={"status": ['"paid" is not a valid choice.']}),
        },
        examples=[response_example({"next": None, "previous": None, "results": [REWARD_EXAMPLE]}, "Rewards")],
    )
    def list(self, request: Request) -> Response:
        query = RewardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = self.paginate_queryset(selectors.reward_list(owner=request.user, **query.validated_data))
        return self.get_paginated_response(rewards_representation(page))
