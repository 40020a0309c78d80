"""A statement as one CSV table: one header, and a `record` column that says what each row is.

`opening` (the balance at `from`), one `entry` per ledger entry in chain
order, one `total` per type present (`count`, and its sum under `debit` or
`credit`), and `closing` (Σ debits, Σ credits and the balance at `to`). One
table with one header reads in any spreadsheet or CSV library; amounts are
written with the currency's minor unit, times in UTC as the API writes them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from transactions.models import CREDIT_TYPES, Transaction
from transactions.statements.checking import Totals
from transactions.statements.selectors import Statement
from transactions.statements.serializers import instant_text
from wallet_project.money import format_amount, format_rate

COLUMNS = (
    "record",
    "created_at",
    "sequence",
    "entry_id",
    "type",
    "count",
    "debit",
    "credit",
    "balance",
    "currency",
    "reference",
    "description",
    "merchant",
    "related_wallet_balance_id",
    "exchange_rate",
)
# A spreadsheet runs a cell that starts with one of these as a formula: such text is written after a quote.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """A file-like object whose write() hands the line back, so csv.writer can feed a generator."""

    def write(self, line: str) -> str:
        return line


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


class CsvStatement:
    content_type = "text/csv; charset=utf-8"
    extension = "csv"
    attachment = True

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self.minor_unit = statement.balance.currency.minor_unit
        self.currency = statement.balance.currency_id
        self.writer = csv.writer(_Line(), lineterminator="\r\n")

    def _amount(self, amount: Decimal) -> str:
        return format_amount(amount, self.minor_unit)

    def _row(self, **cells: Any) -> str:
        return self.writer.writerow([cells.get(column, "") for column in COLUMNS])

    def opening(self) -> Iterator[bytes]:
        opening = self.statement.opening.amount
        yield (
            self.writer.writerow(COLUMNS)
            + self._row(
                record="opening",
                created_at=instant_text(self.statement.start),
                balance=self._amount(opening),
                currency=self.currency,
            )
        ).encode()

    def _entry(self, entry: Transaction) -> str:
        amount = self._amount(entry.amount)
        credit = entry.type in CREDIT_TYPES
        return self._row(
            record="entry",
            created_at=instant_text(entry.created_at),
            sequence=entry.sequence,
            entry_id=entry.pk,
            type=entry.type,
            debit="" if credit else amount,
            credit=amount if credit else "",
            balance=self._amount(entry.balance_after),
            currency=self.currency,
            reference=entry.reference,
            description=_text(entry.description),
            merchant=_text(entry.merchant),
            related_wallet_balance_id=entry.related_wallet_balance_id or "",
            exchange_rate="" if entry.exchange_rate is None else format_rate(entry.exchange_rate),
        )

    def entries(self, entries: list[Transaction]) -> Iterator[bytes]:
        yield "".join(self._entry(entry) for entry in entries).encode()

    def closing(self, totals: Totals) -> Iterator[bytes]:
        rows = [
            self._row(
                record="total",
                type=kind,
                count=total.count,
                **{total.direction: self._amount(total.amount)},
                currency=self.currency,
            )
            for kind, total in totals.in_type_order()
        ]
        rows.append(
            self._row(
                record="closing",
                created_at=instant_text(self.statement.end),
                debit=self._amount(totals.debits),
                credit=self._amount(totals.credits),
                balance=self._amount(self.statement.closing.amount),
                currency=self.currency,
            )
        )
        yield "".join(rows).encode()
