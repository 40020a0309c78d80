"""Reading the three formats of a statement back, for the tests: each into the same plain summary."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from transactions.models import CREDIT_TYPES, Transaction


@dataclass
class Summary:
    opening: Decimal
    closing: Decimal
    sequences: list[int]
    totals: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    credits: Decimal = Decimal(0)
    debits: Decimal = Decimal(0)


def statement_url(balance) -> str:
    return f"/api/v1/balances/{balance.pk}/statement/"


def period(start: datetime, end: datetime, fmt: str = "json") -> dict[str, str]:
    return {"from": start.isoformat(), "to": end.isoformat(), "format": fmt}


def body_of(response) -> bytes:
    assert response.streaming, "a statement is streamed"
    return b"".join(response.streaming_content)


def expected_summary(balance, start: datetime, end: datetime) -> Summary:
    """What the ledger says the statement must show, from every entry of the balance (the oracle)."""
    chain = list(Transaction.objects.filter(wallet_balance=balance).order_by("sequence"))
    opening = next((e.balance_after for e in reversed(chain) if e.created_at < start), Decimal(0))
    closing = next((e.balance_after for e in reversed(chain) if e.created_at < end), Decimal(0))
    inside = [e for e in chain if start <= e.created_at < end]
    summary = Summary(opening=opening, closing=closing, sequences=[e.sequence for e in inside])
    for entry in inside:
        count, amount = summary.totals.get(entry.type, (0, Decimal(0)))
        summary.totals[entry.type] = (count + 1, amount + entry.amount)
        if entry.type in CREDIT_TYPES:
            summary.credits += entry.amount
        else:
            summary.debits += entry.amount
    return summary


def json_summary(body: bytes) -> tuple[dict, Summary]:
    document = json.loads(body)
    summary = Summary(
        opening=Decimal(document["opening_balance"]),
        closing=Decimal(document["closing_balance"]),
        sequences=[entry["sequence"] for entry in document["entries"]],
        totals={total["type"]: (total["count"], Decimal(total["amount"])) for total in document["totals"]},
        credits=Decimal(document["total_credits"]),
        debits=Decimal(document["total_debits"]),
    )
    return document, summary


def csv_summary(body: bytes) -> tuple[list[dict[str, str]], Summary]:
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    (opening,) = [row for row in rows if row["record"] == "opening"]
    (closing,) = [row for row in rows if row["record"] == "closing"]
    summary = Summary(
        opening=Decimal(opening["balance"]),
        closing=Decimal(closing["balance"]),
        sequences=[int(row["sequence"]) for row in rows if row["record"] == "entry"],
        totals={
            row["type"]: (int(row["count"]), Decimal(row["debit"] or row["credit"]))
            for row in rows
            if row["record"] == "total"
        },
        credits=Decimal(closing["credit"]),
        debits=Decimal(closing["debit"]),
    )
    return rows, summary


def a_second_around(entries: list[Transaction]) -> tuple[datetime, datetime]:
    return entries[0].created_at - timedelta(seconds=1), entries[-1].created_at + timedelta(seconds=1)
