"""A batch's input, validated movement by movement with each movement's own endpoint's input serializer."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from transactions.batches.services import DEPOSIT, MAX_MOVEMENTS, MOVEMENT_TYPES, PAYMENT, TRANSFER, WITHDRAW
from transactions.serializers import (
    BalanceMovementInputSerializer,
    PaymentInputSerializer,
    TransactionOutputSerializer,
    TransferInputSerializer,
)
from transactions.serializers import PaymentOutputSerializer as _PaymentOutput
from wallet_project.fields import StrictCharField
from wallet_project.quick_input import QuickSerializer, validated

# Each movement of a batch is validated as its own endpoint validates it: the same fields, the same messages.
MOVEMENT_INPUTS: dict[str, type[QuickSerializer]] = {
    DEPOSIT: BalanceMovementInputSerializer,
    WITHDRAW: BalanceMovementInputSerializer,
    PAYMENT: PaymentInputSerializer,
    TRANSFER: TransferInputSerializer,
}


def _typed(kind: str, base: type[serializers.Serializer], what: str) -> type[serializers.Serializer]:
    """The documented shape of one kind of movement in a batch: `type`, then the fields of its endpoint."""
    type_field = serializers.ChoiceField(choices=[kind], help_text=f"`{kind}`: {what}")
    attributes = {"type": type_field, "__doc__": f"A movement of a batch: {what}", "__module__": __name__}
    return type(f"Batch{kind.capitalize()}", (base,), attributes)


_DOCUMENTED = {
    DEPOSIT: _typed(DEPOSIT, BalanceMovementInputSerializer, "a DEPOSIT on one of your balances."),
    WITHDRAW: _typed(WITHDRAW, BalanceMovementInputSerializer, "a WITHDRAWAL from one of your balances."),
    PAYMENT: _typed(PAYMENT, PaymentInputSerializer, "a PAYMENT to a merchant from one of your balances."),
    TRANSFER: _typed(TRANSFER, TransferInputSerializer, "a transfer from one of your balances to any balance."),
}


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="BatchMovement",
        serializers=_DOCUMENTED,
        resource_type_field_name="type",
    )
)
class BatchMovementField(serializers.Field):
    """One movement: `type` names its endpoint, the other fields are that endpoint's, validated by its serializer."""

    default_error_messages = {
        "not_an_object": "Expected an object with a `type` and the fields of its endpoint.",
        "type": "Expected one of: " + ", ".join(f'"{kind}"' for kind in MOVEMENT_TYPES) + ".",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_an_object")
        kind = data.get("type")
        if not isinstance(kind, str) or kind not in MOVEMENT_INPUTS:
            raise serializers.ValidationError({"type": [self.error_messages["type"]]})
        return {"type": kind, **validated(MOVEMENT_INPUTS[kind], data)}

    def to_representation(self, value: Any) -> Any:
        return value


class BatchMovementsField(serializers.ListField):
    """The movements, counted before any is validated: a list past the limit costs nothing more."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, list) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class BatchInputSerializer(serializers.Serializer):
    """Up to 1,000 movements, booked all together or not at all."""

    movements = BatchMovementsField(
        child=BatchMovementField(),
        allow_empty=False,
        min_length=1,
        max_length=MAX_MOVEMENTS,
        help_text=f"1 to {MAX_MOVEMENTS:,} movements, booked in this order: each sees the balances as the ones "
        "before it left them.",
    )
    description = StrictCharField(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text="Kept on the entries of every movement that gives no description of its own.",
    )


class BatchOutputSerializer(serializers.Serializer):
    """A booked batch: its id, and each movement's entry in order."""

    id = serializers.UUIDField(help_text="The batch's own id; each movement's entries carry their own `reference`.")
    entries = serializers.ListField(
        child=PolymorphicProxySerializer(
            component_name="BatchEntry",
            serializers={
                "DEPOSIT": TransactionOutputSerializer,
                "WITHDRAWAL": TransactionOutputSerializer,
                "PAYMENT": _PaymentOutput,
                "TRANSFER_OUT": TransactionOutputSerializer,
            },
            resource_type_field_name="type",
        ),
        help_text="One entry per movement, in order: the one its own endpoint answers with (a transfer's "
        "TRANSFER_OUT; a payment's PAYMENT, with the cashback it earned).",
    )
    count = serializers.IntegerField(min_value=1, help_text="How many movements were booked.")
