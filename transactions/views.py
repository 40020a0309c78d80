"""Money movement and history endpoints (API.md, "Money movements").

Views are thin: an input serializer validates, one service call moves the
money (through `idempotency.respond`, which stores the answer when an
`Idempotency-Key` is sent), an output serializer renders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from loyalty.earning import earned_by
from loyalty.rendering import earned_representation
from loyalty.views import PROGRAM_EXAMPLE
from mfa.step_up import step_up_for
from transactions import idempotency, selectors, services
from transactions.models import Transaction, TransactionSource
from transactions.posting.engine import before_locks
from transactions.posting.hooks import OnBooked
from transactions.posting.planning import guarded_by
from transactions.serializers import (
    BalanceMovementInputSerializer,
    HistoryQuerySerializer,
    PaymentInputSerializer,
    PaymentOutputSerializer,
    RefundInputSerializer,
    TransactionOutputSerializer,
    TransferInputSerializer,
    entry_representation,
)
from wallet_project.pagination import HistoryCursorPagination
from wallet_project.quick_input import QuickSerializer, validated
from wallet_project.replicas.reads import replica_reads
from wallet_project.schema import error_responses, request_example, response_example, success
from wallets.views import UUID_LOOKUP

if TYPE_CHECKING:
    from accounts.models import User
    from wallets.locks import Gate

# A TRANSFER_OUT from a USD balance to a EUR one; `entry_example` derives the other types from it.
ENTRY_EXAMPLE = {
    "id": "7a1d1c7e-2f7b-4a7e-8c53-6a0e4c1b9f10",
    "wallet_balance_id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22",
    "wallet_id": "0b0c6f1e-6d1f-4c55-9a57-3f8f2a7f1c11",
    "currency": "USD",
    "type": "TRANSFER_OUT",
    "amount": "25.00",
    "balance_after": "100.50",
    "sequence": 7,
    "related_wallet_balance_id": "9e3f3d1a-1b8c-4b7e-a1f2-2c4d5e6f7a88",
    "exchange_rate": "0.91",
    "reference": "c2b1f0de-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
    "source": "API",
    "description": "Rent share",
    "merchant": "",
    "created_at": "2026-11-25T10:05:00.123456Z",
}


def entry_example(**changes: Any) -> dict[str, Any]:
    """A single-balance entry (no related balance, no rate) with `changes` applied."""
    return {**ENTRY_EXAMPLE, "related_wallet_balance_id": None, "exchange_rate": None, "description": "", **changes}


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    idempotency.HEADER,
    {"type": "string", "minLength": 1, "maxLength": 255},
    location=OpenApiParameter.HEADER,
    required=False,
    description="1–255 characters, scoped to the caller. A retry with the same key and request gets the "
    "stored answer back (header `Idempotent-Replayed: true`) and moves no money. The same key with another "
    "endpoint or request answers 422 `idempotency_key_reused`; while the first request still runs, 409 "
    "`idempotency_in_progress`. Kept 24 hours.",
)
# The answers a key can replay: the 201 of the movement, or the 422 that refused it.
IDEMPOTENT_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    {"type": "string", "enum": ["true"]},
    location=OpenApiParameter.HEADER,
    response=[201, 422],
    description="`true` when this answer is the stored answer to an earlier request with the same "
    "`Idempotency-Key`: no money moved this time. Absent on a first answer.",
)

BAD_AMOUNT = {"amount": ["Ensure this value is greater than zero."]}
BAD_DATE = {"created_after": ["Use a date (YYYY-MM-DD) or an ISO 8601 datetime."]}

MOVEMENT_ERRORS = {
    400: ["validation_error"],
    409: ["idempotency_in_progress"],
    429: ["lock_timeout", "throttled"],
    503: ["service_unavailable"],
}


# What the movements that take money out of the caller's hands say about step-up (mfa/step_up.py).
STEP_UP_NOTE = (
    " When the service sets a step-up amount, a movement worth more than it (converted at the current rate) "
    "needs an access token whose second factor was given within the last minutes; otherwise it answers 403 "
    "`mfa_required` (`details.reason`: `not_enrolled`, add an authenticator app first, or `stale`, log in "
    "again with a code), after the 400 and 404 checks and with nothing locked or written."
)


def movement_schema(
    *,
    summary: str,
    description: str,
    created: str,
    request: type,
    rules: list[str],
    example: dict,
    entry: dict,
    response: type = TransactionOutputSerializer,
    step_up: bool = True,
) -> Any:
    """The OpenAPI description of a movement; `step_up`: it may be refused for want of a recent second factor."""
    statuses = (400, 401, 403, 404, 409, 413, 422, 429, 503) if step_up else (400, 401, 404, 409, 413, 422, 429, 503)
    return extend_schema(
        summary=summary,
        description=description
        + " Checks run in the contract's order: 400 (the input), 404 (a balance not visible to you), "
        "422 (the rules). A refused movement leaves no trace." + (STEP_UP_NOTE if step_up else ""),
        request=request,
        parameters=[IDEMPOTENCY_PARAMETER, IDEMPOTENT_REPLAYED],
        responses={
            201: success(response, created),
            **error_responses(
                *statuses,
                codes={**MOVEMENT_ERRORS, 403: ["mfa_required"], 422: [*rules, "idempotency_key_reused"]},
                invalid=BAD_AMOUNT,
            ),
        },
        examples=[request_example(example), response_example(entry, "Created", status=201)],
    )


class CanRefundPayments(permissions.BasePermission):
    """The permission the back office's refund asks for (`transactions.refund_payment`, Finance), held by an active
    staff member: being staff alone is not enough, and a deactivated account has no permissions."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff and user.has_perm("transactions.refund_payment"))


def render_entry(entry: Transaction) -> dict[str, Any]:
    """An entry as the API answers it: TransactionOutputSerializer's data, without building one."""
    return entry_representation(entry)


def render_payment(entry: Transaction) -> dict[str, Any]:
    """A payment as its answer shows it: the entry and the cashback it earned (PaymentOutputSerializer's data)."""
    return {**entry_representation(entry), "loyalty": earned_representation(earned_by(entry))}


@dataclass(frozen=True)
class Movement:
    """A movement on the caller's own balances: its input, the service that books it, and its answer."""

    input_serializer: type[QuickSerializer]
    service: Callable[..., Transaction]
    render: Callable[[Transaction], dict[str, Any]] = render_entry


# The four movements of a caller on their own balances, by endpoint; refunds are staff's and apart.
MOVEMENTS: dict[str, Movement] = {
    "deposit": Movement(BalanceMovementInputSerializer, services.deposit_create),
    "withdraw": Movement(BalanceMovementInputSerializer, services.withdrawal_create),
    "payment": Movement(PaymentInputSerializer, services.payment_create, render_payment),
    "transfer": Movement(TransferInputSerializer, services.transfer_create),
}


def movement_execute(
    *,
    endpoint: str,
    data: Mapping[str, Any],
    user: User,
    token: Any,
    on_booked: OnBooked | None = None,
    gate: Gate | None = None,
) -> Transaction:
    """Book one of the caller's movements (MOVEMENTS): the one call of its service, for this view and the fast
    path (`transactions.fast_path`) alike. `token` is the caller's access token: a large movement needs a
    recent second factor in it (`mfa.step_up`). `gate`, the fast path's throttle count, is made with the locks."""
    with before_locks(gate), guarded_by(step_up_for(user=user, token=token)):
        return MOVEMENTS[endpoint].service(
            **data, owner=user, created_by=user, source=TransactionSource.API, on_booked=on_booked
        )


@extend_schema(tags=["transactions"])
@extend_schema_view(
    list=extend_schema(
        summary="My transaction history",
        description="The caller's ledger entries, newest first, cursor-paginated: `{next, previous, results}`, "
        "follow the links (`page_size` at most 200). `created_after` is inclusive, `created_before` exclusive; "
        "both take a date or a datetime (UTC). A malformed filter or cursor answers 400; an id that is not "
        "yours gives an empty list.",
        parameters=[HistoryQuerySerializer],
        responses={
            200: success(TransactionOutputSerializer(many=True), "A page of the caller's entries, newest first."),
            **error_responses(400, 401, 429, 503, invalid=BAD_DATE),
        },
        examples=[response_example(ENTRY_EXAMPLE, "History")],
    ),
    retrieve=extend_schema(
        summary="One of my transactions",
        description="One ledger entry on one of the caller's balances; another user's entry answers 404.",
        responses={200: success(TransactionOutputSerializer, "The entry."), **error_responses(401, 404, 429, 503)},
        examples=[response_example(ENTRY_EXAMPLE, "Entry")],
    ),
)
class TransactionViewSet(viewsets.GenericViewSet):
    serializer_class = TransactionOutputSerializer
    pagination_class = HistoryCursorPagination
    lookup_value_regex = UUID_LOOKUP

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return Transaction.objects.filter(owner=self.request.user)

    @replica_reads  # history tolerates a replica's lag; the caller's own recent writes read the primary
    def list(self, request: Request) -> Response:
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        entries = selectors.transaction_history(
            owner=request.user, filters=selectors.HistoryFilters(**query.validated_data)
        )
        page = self.paginate_queryset(entries)
        # TransactionOutputSerializer(page, many=True).data, without the list serializer: it and
        # its data hold each other, so the page's entries would wait for the cyclic collector.
        return self.get_paginated_response([render_entry(entry) for entry in page])

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(render_entry(selectors.transaction_get(owner=request.user, entry_id=pk)))

    def _move_own(self, request: Request, endpoint: str) -> Response:
        """One of the four movements on the caller's own balances (MOVEMENTS)."""
        data = validated(MOVEMENTS[endpoint].input_serializer, request.data)
        return idempotency.respond(
            request=request,
            endpoint=endpoint,
            data=data,
            perform=lambda on_booked: movement_execute(
                endpoint=endpoint, data=data, user=request.user, token=request.auth, on_booked=on_booked
            ),
            render=MOVEMENTS[endpoint].render,
        )

    @movement_schema(
        summary="Deposit",
        created="Created: the DEPOSIT entry, with the balance after it.",
        description="Credits one of your balances (a DEPOSIT entry).",
        request=BalanceMovementInputSerializer,
        rules=["wallet_frozen"],
        example={"wallet_balance_id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22", "amount": "100.00"},
        entry=entry_example(type="DEPOSIT", amount="100.00", balance_after="225.50"),
        step_up=False,
    )
    @action(detail=False, methods=["post"])
    def deposit(self, request: Request) -> Response:
        return self._move_own(request, "deposit")

    @movement_schema(
        summary="Withdraw",
        created="Created: the WITHDRAWAL entry, with the balance after it.",
        description="Debits one of your balances (a WITHDRAWAL entry).",
        request=BalanceMovementInputSerializer,
        rules=["insufficient_funds", "wallet_frozen"],
        example={"wallet_balance_id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22", "amount": "40.00"},
        entry=entry_example(type="WITHDRAWAL", amount="40.00", balance_after="85.50"),
    )
    @action(detail=False, methods=["post"])
    def withdraw(self, request: Request) -> Response:
        return self._move_own(request, "withdraw")

    @movement_schema(
        summary="Pay a merchant",
        created="Created: the PAYMENT entry, with the balance after it, and the cashback it earned (`loyalty`, "
        "null when none).",
        description="Debits one of your balances (a PAYMENT entry); staff can refund it later. While a loyalty "
        "programme is active in the balance's currency, the payment earns cashback: `loyalty` shows it `pending`; "
        "it is booked onto the same balance within seconds (a LOYALTY entry with the payment's `reference`, see "
        "`GET /api/v1/loyalty/rewards/`). A payment never fails because of loyalty.",
        request=PaymentInputSerializer,
        rules=["insufficient_funds", "wallet_frozen"],
        example={
            "wallet_balance_id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22",
            "amount": "12.99",
            "merchant": "Coffee Corner",
        },
        entry={
            **entry_example(type="PAYMENT", amount="12.99", balance_after="112.51", merchant="Coffee Corner"),
            "loyalty": {"amount": "0.12", "program": PROGRAM_EXAMPLE, "status": "pending"},
        },
        response=PaymentOutputSerializer,
    )
    @action(detail=False, methods=["post"])
    def payment(self, request: Request) -> Response:
        return self._move_own(request, "payment")

    @movement_schema(
        summary="Transfer",
        created="Created: the TRANSFER_OUT entry on the source balance; the TRANSFER_IN entry on the "
        "destination shares its `reference`.",
        description="Moves money from one of your balances to any balance (yours or another user's): "
        "a transfer between two of your own balances is never asked for a second factor. "
        "TRANSFER_OUT on the source, TRANSFER_IN on the destination, one reference. Between two currencies "
        "the destination is credited `amount × rate` at the current rate, rounded down to its minor unit; "
        "both legs record the rate. Answers the TRANSFER_OUT entry.",
        request=TransferInputSerializer,
        rules=["same_balance", "rate_unavailable", "amount_too_small", "insufficient_funds", "wallet_frozen"],
        example={
            "from_wallet_balance_id": "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22",
            "to_wallet_balance_id": "9e3f3d1a-1b8c-4b7e-a1f2-2c4d5e6f7a88",
            "amount": "25.00",
            "description": "Rent share",
        },
        entry=ENTRY_EXAMPLE,
    )
    @action(detail=False, methods=["post"])
    def transfer(self, request: Request) -> Response:
        return self._move_own(request, "transfer")

    @extend_schema(
        summary="Refund a payment (staff with the refund permission)",
        description="Credits the paying balance with a REFUND entry carrying the payment's reference; "
        "`amount` defaults to what is left to refund. Partial refunds add up to at most the payment. "
        "Only staff allowed to refund payments (the Finance group) may call it: anyone else gets 403 "
        "whatever the id.",
        request=RefundInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER, IDEMPOTENT_REPLAYED],
        responses={
            201: success(TransactionOutputSerializer, "Refunded: the REFUND entry written on the paying balance."),
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
                    **MOVEMENT_ERRORS,
                    422: ["not_refundable", "refund_exceeds_payment", "wallet_frozen", "idempotency_key_reused"],
                },
                invalid=BAD_AMOUNT,
            ),
        },
        examples=[
            request_example({"amount": "5.00"}, "Partial refund"),
            response_example(
                entry_example(type="REFUND", amount="5.00", balance_after="117.51", merchant="Coffee Corner"),
                "Refunded",
                status=201,
            ),
        ],
    )
    @action(detail=True, methods=["post"], permission_classes=[CanRefundPayments])
    def refund(self, request: Request, pk: str) -> Response:
        payment_id = UUID(pk)
        data = validated(RefundInputSerializer, request.data)
        return idempotency.respond(
            request=request,
            endpoint=f"refund:{payment_id}",
            data=data,
            perform=lambda on_booked: services.refund_create(
                **data,
                payment_id=payment_id,
                created_by=request.user,
                source=TransactionSource.API,
                on_booked=on_booked,
            ),
            render=render_entry,
        )
