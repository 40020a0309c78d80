"""The arithmetic of a statement, checked entry by entry as it is written.

Each entry must follow the one before it in its balance's chain (the next
`sequence`, `balance_after` = the running balance ± its amount) and lie in
the period; at the end, opening + Σ credits − Σ debits must be the closing
balance, and the last entry the closing one. The database's chain trigger
already holds the chain at every insert: a statement that fails here means
something got past it (a restore, a hand-made row) or the statement's reads
are wrong, and the statement must not be sent as if it added up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from transactions.models import CREDIT_TYPES, Transaction, TransactionType
from transactions.statements.selectors import Statement
from wallet_project.money import EXACT


class StatementBroken(Exception):
    """The entries of a statement do not add up; the message says where."""


@dataclass
class TypeTotal:
    is_credit: bool
    count: int = 0
    amount: Decimal = Decimal(0)

    @property
    def direction(self) -> str:
        return "credit" if self.is_credit else "debit"


@dataclass
class Totals:
    """What a statement's entries add up to, per type and in all."""

    by_type: dict[str, TypeTotal] = field(default_factory=dict)
    credits: Decimal = Decimal(0)
    debits: Decimal = Decimal(0)

    def in_type_order(self) -> list[tuple[str, TypeTotal]]:
        """The types present, in the order the ledger declares them."""
        return [(kind, self.by_type[kind]) for kind in TransactionType.values if kind in self.by_type]


class RunningCheck:
    """Follows a statement's entries in chain order; `add` each before it is written, `close` after the last."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self.balance = statement.opening.amount
        self.sequence = statement.opening.sequence
        self.totals = Totals()

    def add(self, entry: Transaction) -> None:
        credit = entry.type in CREDIT_TYPES
        moved = entry.amount if credit else -entry.amount
        expected = EXACT.add(self.balance, moved)
        if entry.sequence != self.sequence + 1:
            raise StatementBroken(f"entry {entry.pk} has sequence {entry.sequence}; {self.sequence + 1} was next")
        if entry.balance_after != expected:
            raise StatementBroken(f"entry {entry.pk} leaves {entry.balance_after}; the chain gives {expected}")
        if not self.statement.start <= entry.created_at < self.statement.end:
            raise StatementBroken(f"entry {entry.pk} was created at {entry.created_at}, outside the period")
        self.balance, self.sequence = expected, entry.sequence
        total = self.totals.by_type.setdefault(entry.type, TypeTotal(is_credit=credit))
        total.count += 1
        total.amount = EXACT.add(total.amount, entry.amount)
        if credit:
            self.totals.credits = EXACT.add(self.totals.credits, entry.amount)
        else:
            self.totals.debits = EXACT.add(self.totals.debits, entry.amount)

    def close(self) -> Totals:
        """The totals, once opening + credits − debits is the closing balance and the last entry the closing one."""
        closing = self.statement.closing
        computed = EXACT.subtract(EXACT.add(self.statement.opening.amount, self.totals.credits), self.totals.debits)
        if computed != closing.amount or self.balance != closing.amount:
            raise StatementBroken(f"opening + credits - debits = {computed}; the closing balance is {closing.amount}")
        if self.sequence != closing.sequence:
            raise StatementBroken(f"the entries end at sequence {self.sequence}; the closing one is {closing.sequence}")
        return self.totals
