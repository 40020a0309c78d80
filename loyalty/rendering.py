"""Rewards and earnings as the API (and the events) show them, written out by hand like the ledger entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rest_framework import serializers

from loyalty.earning import Earned
from loyalty.models import Reward
from wallet_project.money import format_amount
from wallets.selectors import minor_unit_of

_TIMESTAMP = serializers.DateTimeField()


def earned_representation(earned: Earned | None) -> dict[str, Any] | None:
    """A payment's `loyalty`: `{amount, program, status}`, or None when it earned nothing."""
    if earned is None:
        return None
    return {
        "amount": format_amount(earned.amount, minor_unit_of(earned.currency)),
        "program": {"id": str(earned.program_id), "name": earned.program_name},
        "status": earned.status,
    }


def rewards_representation(rewards: Sequence[Reward]) -> list[dict[str, Any]]:
    """The rewards as the API shows them; their programmes read with them (`select_related("program")`)."""
    return [_reward(reward) for reward in rewards]


def _reward(reward: Reward) -> dict[str, Any]:
    minor_unit = minor_unit_of(reward.currency_id)
    return {
        "id": str(reward.pk),
        "payment_id": str(reward.payment_id),
        "reference": str(reward.reference),
        "wallet_balance_id": str(reward.wallet_balance_id),
        "currency": reward.currency_id,
        "amount": format_amount(reward.amount, minor_unit),
        "reversed_amount": format_amount(reward.reversed_amount, minor_unit),
        "unreversed_amount": format_amount(reward.unreversed_amount, minor_unit),
        "net_amount": format_amount(reward.net_amount, minor_unit),
        "status": reward.status,
        "program": {"id": str(reward.program_id), "name": reward.program.name},
        "created_at": _TIMESTAMP.to_representation(reward.created_at),
        "booked_at": None if reward.booked_at is None else _TIMESTAMP.to_representation(reward.booked_at),
    }
