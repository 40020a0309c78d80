"""The `/api/v1/holds/` endpoints: reserve, list, read, capture, void (issue #16's contract, API.md "Additions").

Thin, as the movement views: an input serializer validates, one service call
does the work (through `idempotency.respond` for the three writes), and the
hold is rendered by hand (`hold_representation`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from loyalty.earning import earned_by
from loyalty.rendering import earned_representation
from mfa.step_up import step_up_for
from transactions import idempotency
from transactions.holds import selectors, services
from transactions.holds.rendering import holds_representation
from transactions.holds.serializers import (
    CaptureOutputSerializer,
    HoldCaptureInputSerializer,
    HoldCreateInputSerializer,
    HoldOutputSerializer,
    HoldQuerySerializer,
)
from transactions.models import Hold, TransactionSource
from transactions.posting.planning import guarded_by
from transactions.serializers import entry_representation
from transactions.views import (
    BAD_AMOUNT,
    IDEMPOTENCY_PARAMETER,
    IDEMPOTENT_REPLAYED,
    MOVEMENT_ERRORS,
    STEP_UP_NOTE,
    entry_example,
)
from wallet_project.pagination import HistoryCursorPagination
from wallet_project.quick_input import validated
from wallet_project.schema import error_responses, request_example, response_example, success
from wallets.views import UUID_LOOKUP

HOLD_EXAMPLE = {
    "id": "01938f2a-7c1e-7d3a-9b4e-5f6a7b8c9d0e",
    "wallet_balance_id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22",
    "currency": "USD",
    "amount": "80.00",
    "captured_amount": "0.00",
    "remaining": "80.00",
    "status": "active",
    "description": "Room 412, two nights",
    "merchant": "Harbour Hotel",
    "expires_at": "2026-12-12T10:00:00Z",
    "created_at": "2026-12-05T10:00:00.123456Z",
    "resolved_at": None,
    "entries": [],
}
CAPTURE_ENTRY_EXAMPLE = entry_example(
    type="CAPTURE",
    amount="72.40",
    balance_after="53.10",
    reference="01938f2a-7c1e-7d3a-9b4e-000000000001",
    description="Room 412, two nights",
    merchant="Harbour Hotel",
)
CAPTURED_EXAMPLE = {
    "hold": {
        **HOLD_EXAMPLE,
        "captured_amount": "72.40",
        "remaining": "0.00",
        "status": "captured",
        "resolved_at": "2026-12-07T11:30:00.654321Z",
        "entries": [CAPTURE_ENTRY_EXAMPLE],
    },
    "entry": CAPTURE_ENTRY_EXAMPLE,
    "loyalty": None,
}
_HOLD_ERRORS = {**MOVEMENT_ERRORS, 400: ["validation_error"]}
_RULES_ORDER = (
    " Checks run in the contract's order: 400 (the input), 404 (a hold or balance not visible to you), "
    "422 (the rules); a refused request leaves no trace."
)


def _render_hold(hold: Hold) -> dict[str, Any]:
    return holds_representation([hold])[0]


def _render_captured(captured: services.Captured) -> dict[str, Any]:
    return {
        "hold": _render_hold(captured.hold),
        "entry": entry_representation(captured.entry),
        "loyalty": earned_representation(earned_by(captured.entry)),
    }


@extend_schema(tags=["holds"])
@extend_schema_view(
    list=extend_schema(
        summary="My holds",
        description="The caller's holds, newest first, cursor-paginated (`page_size` at most 200). `status` is "
        "the status as of now: a hold past its expiry is `expired` whether or not the sweeper has marked it.",
        parameters=[HoldQuerySerializer],
        responses={
            200: success(HoldOutputSerializer(many=True), "A page of the caller's holds, newest first."),
            **error_responses(400, 401, 429, 503),
        },
        examples=[response_example(HOLD_EXAMPLE, "Holds")],
    ),
    retrieve=extend_schema(
        summary="One of my holds",
        description="A hold with the CAPTURE entries it booked; another user's hold answers 404.",
        responses={200: success(HoldOutputSerializer, "The hold."), **error_responses(401, 404, 429, 503)},
        examples=[response_example(HOLD_EXAMPLE, "Hold")],
    ),
)
class HoldViewSet(viewsets.GenericViewSet):
    serializer_class = HoldOutputSerializer
    pagination_class = HistoryCursorPagination
    lookup_value_regex = UUID_LOOKUP

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return Hold.objects.filter(owner=self.request.user)

    def list(self, request: Request) -> Response:
        query = HoldQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        holds = selectors.hold_list(owner=request.user, filters=selectors.HoldFilters(**query.validated_data))
        page = self.paginate_queryset(holds)
        return self.get_paginated_response(holds_representation(page))

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_render_hold(selectors.hold_get(hold_id=UUID(pk), owner=request.user)))

    @extend_schema(
        summary="Place a hold",
        description="Reserves `amount` of one of your balances: its `held` rises and its `available` falls by "
        "that much, its `amount` does not, and no ledger entry is written. Withdrawals, payments, outgoing "
        "transfers and other holds can only use what is available. The hold is captured (`POST …/capture/`), "
        "voided (`POST …/void/`), or expires by itself after `expires_in` seconds." + _RULES_ORDER + STEP_UP_NOTE,
        request=HoldCreateInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER, IDEMPOTENT_REPLAYED],
        responses={
            201: success(HoldOutputSerializer, "Created: the active hold."),
            **error_responses(
                400,
                401,
                403,
                404,
                409,
                413,
                422,
                429,
                503,
                codes={
                    **_HOLD_ERRORS,
                    403: ["mfa_required"],
                    422: ["insufficient_funds", "wallet_frozen", "idempotency_key_reused"],
                },
                invalid=BAD_AMOUNT,
            ),
        },
        examples=[
            request_example(
                {
                    "wallet_balance_id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22",
                    "amount": "80.00",
                    "description": "Room 412, two nights",
                    "merchant": "Harbour Hotel",
                    "expires_in": 604800,
                }
            ),
            response_example(HOLD_EXAMPLE, "Created", status=201),
        ],
    )
    def create(self, request: Request) -> Response:
        data = validated(HoldCreateInputSerializer, request.data)

        def place(on_created: Any) -> Hold:
            # A hold takes money out of the caller's hands: a large one needs a recent second factor.
            with guarded_by(step_up_for(user=request.user, token=request.auth)):
                return services.hold_create(
                    **data,
                    owner=request.user,
                    created_by=request.user,
                    source=TransactionSource.API,
                    on_created=on_created,
                )

        return idempotency.respond(request=request, endpoint="hold", data=data, perform=place, render=_render_hold)

    @extend_schema(
        summary="Capture a hold",
        description="Books a CAPTURE entry (a debit with the hold's `reference`) of `amount`, by default what "
        "remains. With `final` (the default) the rest is released and the hold is `captured`; with "
        "`final: false` the rest stays reserved and the hold can be captured again. A capture at or after "
        "`expires_at` answers `hold_expired`; of a hold already captured or voided, `hold_not_active` (its "
        "status in `details`). Staff can refund a capture like a payment." + _RULES_ORDER,
        request=HoldCaptureInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER, IDEMPOTENT_REPLAYED],
        responses={
            201: success(
                CaptureOutputSerializer, "Captured: the hold as it is now, the CAPTURE entry, and its cashback."
            ),
            **error_responses(
                400,
                401,
                404,
                409,
                413,
                422,
                429,
                503,
                codes={
                    **_HOLD_ERRORS,
                    422: [
                        "hold_not_active",
                        "hold_expired",
                        "capture_exceeds_hold",
                        "wallet_frozen",
                        "idempotency_key_reused",
                    ],
                },
                invalid=BAD_AMOUNT,
            ),
        },
        examples=[
            request_example({"amount": "72.40", "final": True}, "Final capture of less than the hold"),
            response_example(CAPTURED_EXAMPLE, "Captured", status=201),
        ],
    )
    @action(detail=True, methods=["post"])
    def capture(self, request: Request, pk: str) -> Response:
        hold_id = UUID(pk)
        data = validated(HoldCaptureInputSerializer, request.data)
        return idempotency.respond(
            request=request,
            endpoint=f"hold-capture:{hold_id}",
            data=data,
            perform=lambda on_captured: services.hold_capture(
                **data,
                hold_id=hold_id,
                owner=request.user,
                created_by=request.user,
                source=TransactionSource.API,
                on_captured=on_captured,
            ),
            render=_render_captured,
        )

    @extend_schema(
        summary="Void a hold",
        description="Releases what remains of the hold (`voided`); no ledger entry is written. Works on a frozen "
        "wallet too. A hold already captured, voided or expired answers `hold_not_active` (its status in "
        "`details`).",
        request=None,
        parameters=[IDEMPOTENCY_PARAMETER, IDEMPOTENT_REPLAYED],
        responses={
            200: success(HoldOutputSerializer, "Voided: the hold as it is now."),
            **error_responses(
                400,
                401,
                404,
                409,
                422,
                429,
                503,
                codes={**_HOLD_ERRORS, 422: ["hold_not_active", "idempotency_key_reused"]},
                invalid={"Idempotency-Key": ["An Idempotency-Key has 1 to 255 characters."]},
            ),
        },
        examples=[
            response_example(
                {**HOLD_EXAMPLE, "status": "voided", "remaining": "0.00", "resolved_at": "2026-12-06T09:00:00Z"},
                "Voided",
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def void(self, request: Request, pk: str) -> Response:
        hold_id = UUID(pk)
        return idempotency.respond(
            request=request,
            endpoint=f"hold-void:{hold_id}",
            data={},
            perform=lambda on_voided: services.hold_void(
                hold_id=hold_id,
                owner=request.user,
                created_by=request.user,
                source=TransactionSource.API,
                on_voided=on_voided,
            ),
            render=_render_hold,
            status=HTTPStatus.OK,
        )
