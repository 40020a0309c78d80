"""A statement as one JSON object, written piece by piece (its shape: `serializers.StatementJsonSerializer`).

The object's keys come in the order they can be known: the period and its
opening, then the entries as the chain gives them, then the totals and the
closing balance once every entry has been checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from transactions.models import Transaction
from transactions.serializers import entry_representation
from transactions.statements.checking import Totals
from transactions.statements.selectors import Statement
from transactions.statements.serializers import instant_text
from wallet_project.money import format_amount


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))  # DRF's JSONRenderer writes the same


class JsonStatement:
    content_type = "application/json"
    extension = "json"
    attachment = False

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self.minor_unit = statement.balance.currency.minor_unit
        self.first = True

    def _amount(self, amount: Any) -> str:
        return format_amount(amount, self.minor_unit)

    def opening(self) -> Iterator[bytes]:
        statement, holder = self.statement, self.statement.holder
        head = {
            "balance_id": str(statement.balance.pk),
            "wallet_id": str(statement.balance.wallet_id),
            "currency": statement.balance.currency_id,
            "holder": {"name": holder.name, "email": holder.email},
            "from": instant_text(statement.start),
            "to": instant_text(statement.end),
            "generated_at": instant_text(statement.generated_at),
            "opening_balance": self._amount(statement.opening.amount),
        }
        yield (_dumps(head)[:-1] + ',"entries":[').encode()

    def entries(self, entries: list[Transaction]) -> Iterator[bytes]:
        text = ",".join(_dumps(entry_representation(entry)) for entry in entries)
        yield (text if self.first else "," + text).encode()
        self.first = False

    def closing(self, totals: Totals) -> Iterator[bytes]:
        tail = {
            "totals": [
                {"type": kind, "direction": total.direction, "count": total.count, "amount": self._amount(total.amount)}
                for kind, total in totals.in_type_order()
            ],
            "total_credits": self._amount(totals.credits),
            "total_debits": self._amount(totals.debits),
            "closing_balance": self._amount(self.statement.closing.amount),
        }
        yield ("]," + _dumps(tail)[1:]).encode()
