"""`POST /api/v1/transactions/batch/`: many movements of the caller, booked all together or not at all.

Thin, as the movement views: the input serializer validates each movement with
its own endpoint's serializer, one service call books them
(`services.batch_create`, through `idempotency.respond`), and the answer is
written by hand (`render_batch`), each entry as its own endpoint renders it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from mfa.step_up import step_up_for
from transactions import idempotency
from transactions.batches.serializers import BatchInputSerializer, BatchOutputSerializer
from transactions.batches.services import MAX_MOVEMENTS, Batch, OnBatchBooked, batch_create
from transactions.models import Transaction, TransactionSource, TransactionType
from transactions.posting.planning import guarded_by
from transactions.views import (
    ENTRY_EXAMPLE,
    IDEMPOTENCY_PARAMETER,
    IDEMPOTENT_REPLAYED,
    MOVEMENT_ERRORS,
    entry_example,
    render_entry,
    render_payment,
)
from wallet_project.schema import error_responses, request_example, response_example, success

if TYPE_CHECKING:
    from accounts.models import User

ENDPOINT = "batch"

# Each movement's entry as its own endpoint answers it: a payment with the cashback it earned.
_RENDER: dict[str, Callable[[Transaction], dict[str, Any]]] = {TransactionType.PAYMENT: render_payment}


def render_batch(batch: Batch) -> dict[str, Any]:
    """A booked batch as the API answers it (BatchOutputSerializer's shape)."""
    return {
        "id": str(batch.id),
        "entries": [_RENDER.get(entry.type, render_entry)(entry) for entry in batch.entries],
        "count": len(batch.entries),
    }


def batch_execute(*, data: Mapping[str, Any], user: User, token: Any, on_booked: OnBatchBooked | None) -> Batch:
    """Book the caller's batch; its outflows together may need a recent second factor (`mfa.step_up`)."""
    with guarded_by(step_up_for(user=user, token=token)):
        return batch_create(**data, owner=user, created_by=user, source=TransactionSource.API, on_booked=on_booked)


_BALANCE = "5d7c2b9a-3a65-4a43-9d0e-8a3c1e1f7b22"
_REQUEST_EXAMPLE = {
    "description": "Payroll, November",
    "movements": [
        {
            "type": "transfer",
            "from_wallet_balance_id": _BALANCE,
            "to_wallet_balance_id": ENTRY_EXAMPLE["related_wallet_balance_id"],
            "amount": "25.00",
            "description": "Rent share",
        },
        {"type": "payment", "wallet_balance_id": _BALANCE, "amount": "12.99", "merchant": "Coffee Corner"},
        {"type": "deposit", "wallet_balance_id": _BALANCE, "amount": "100.00"},
    ],
}
_RESPONSE_EXAMPLE = {
    "id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    "entries": [
        ENTRY_EXAMPLE,
        {
            **entry_example(
                id="0193a1b2-c3d4-7e5f-8a9b-1c1d2e3f4a5b",
                type="PAYMENT",
                amount="12.99",
                balance_after="87.51",
                sequence=8,
                reference="0193a1b2-c3d4-7e5f-8a9b-2c1d2e3f4a5b",
                description="Payroll, November",
                merchant="Coffee Corner",
            ),
            "loyalty": None,
        },
        entry_example(
            id="0193a1b2-c3d4-7e5f-8a9b-3c1d2e3f4a5b",
            type="DEPOSIT",
            amount="100.00",
            balance_after="187.51",
            sequence=9,
            reference="0193a1b2-c3d4-7e5f-8a9b-4c1d2e3f4a5b",
            description="Payroll, November",
        ),
    ],
    "count": 3,
}
_INVALID = {"movements": {"2": {"amount": ["Ensure this value is greater than zero."]}}}
# What mfa/step_up.py judges: the batch's outflows together, so that splitting a large movement changes nothing.
_STEP_UP_NOTE = (
    " When the service sets a step-up amount, a batch whose withdrawals, payments and transfers to other users "
    "are together worth more than it (converted at the current rate) needs an access token whose second factor "
    "was given within the last minutes; otherwise it answers 403 `mfa_required` (`details.reason`: "
    "`not_enrolled` or `stale`), after the 400 and 404 checks and with nothing locked or written."
)
_RULES = ["same_balance", "rate_unavailable", "amount_too_small", "insufficient_funds", "wallet_frozen"]


class BatchViewSet(viewsets.ViewSet):
    @extend_schema(
        tags=["transactions"],
        summary="A batch of movements, all or nothing",
        description=f"Books 1 to {MAX_MOVEMENTS:,} deposits, withdrawals, payments and transfers on your "
        "balances as one: each movement is `{type, ...}` with `type` the name of its endpoint (`deposit`, "
        "`withdraw`, `payment`, `transfer`) and the fields of that endpoint, under the same rules (ownership, "
        "frozen wallets, funds, precision, the rate of a transfer between two currencies). They are booked in "
        "order, each seeing the balances as the ones before it left them, in one database transaction: if "
        "any is refused, none is booked. Each movement has its own `reference`, entries and events, as if it "
        "had been asked alone; `entries` holds the entry each one's own endpoint answers with. Invalid "
        "movements answer 400 with `details.movements` mapping each one's index to its messages; a refusal "
        "answers with the first refused movement's code (a balance not visible to you, 404, before the "
        "rules, 422) and its `details.index`." + _STEP_UP_NOTE,
        request=BatchInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER, IDEMPOTENT_REPLAYED],
        responses={
            201: success(BatchOutputSerializer, "Created: the batch's id, and each movement's entry in order."),
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
                codes={**MOVEMENT_ERRORS, 403: ["mfa_required"], 422: [*_RULES, "idempotency_key_reused"]},
                invalid=_INVALID,
            ),
        },
        examples=[request_example(_REQUEST_EXAMPLE), response_example(_RESPONSE_EXAMPLE, "Created", status=201)],
    )
    def create(self, request: Request) -> Response:
        serializer = BatchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        return idempotency.respond(
            request=request,
            endpoint=ENDPOINT,
            data=data,
            perform=lambda on_booked: batch_execute(
                data=data, user=request.user, token=request.auth, on_booked=on_booked
            ),
            render=render_batch,
            status=HTTPStatus.CREATED,
        )
