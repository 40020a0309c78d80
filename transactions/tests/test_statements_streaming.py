"""Statements are streamed: read a chunk at a time by keyset, checked as they are written, never held whole."""

from __future__ import annotations

import dataclasses
import json
import logging
import runpy
import tracemalloc
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import WalletFactory, funded_balance
from transactions.models import Transaction
from transactions.statements import selectors
from transactions.statements.checking import StatementBroken
from transactions.statements.streaming import statement_chunks
from transactions.statements.views import WRITERS
from transactions.tests.ledger_builder import book_many
from transactions.tests.statement_reading import a_second_around, body_of, period, statement_url
from wallet_project import gc_tuning, worker_heartbeat

pytestmark = pytest.mark.django_db


def _statement(user, balance) -> selectors.Statement:
    start, end = a_second_around(list(Transaction.objects.filter(wallet_balance=balance).order_by("sequence")))
    return selectors.statement_get(owner=user, balance_id=balance.pk, start=start, end=min(end, timezone.now()))


@pytest.mark.parametrize("fmt", ["json", "csv", "pdf"])
def test_every_format_is_streamed(user, api, fmt):
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    end = timezone.now()

    response = api.get(statement_url(balance), period(end - timedelta(days=1), end, fmt))

    assert response.streaming
    assert body_of(response)


@pytest.mark.parametrize("fmt", ["json", "csv", "pdf"])
def test_the_first_bytes_leave_before_the_later_entries_are_read(user, monkeypatch, fmt):
    monkeypatch.setattr(selectors, "ENTRY_CHUNK_SIZE", 100)
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    book_many(balance, 1000)
    statement = _statement(user, balance)
    chunks = statement_chunks(statement, WRITERS[fmt](statement))

    with CaptureQueriesContext(connection) as queries:
        first = next(chunks)
        while len(queries) == 0:  # the opening bytes need no query; the first entries need one
            next(chunks)
        reads_so_far = len(queries)
    rest = b"".join(chunks)

    assert first and rest
    assert reads_so_far == 1  # one chunk of 100 read, 1,001 entries in the period


def test_entries_are_read_by_keyset_on_the_balances_sequence_index(user):
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    book_many(balance, 50)
    statement = _statement(user, balance)
    queryset = Transaction.objects.filter(
        wallet_balance_id=balance.pk, sequence__gt=20, sequence__lte=statement.closing.sequence
    ).order_by("sequence")[: selectors.ENTRY_CHUNK_SIZE]
    sql, params = queryset.query.sql_with_params()

    with connection.cursor() as cursor:
        # On a table this small any plan is cheap; with sequential scans, bitmap scans and sorts priced out, the
        # plan shows whether the index gives the chain's order by itself.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Index Scan using txn_sequence_unique_per_balance" in plan, plan
    assert "Sort" not in plan, plan


def _peak_while_streaming(statement, fmt: str) -> tuple[int, int]:
    """The most memory Python held above where it started while the statement was written, and its size."""
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        size = sum(len(chunk) for chunk in statement_chunks(statement, WRITERS[fmt](statement)))
        return tracemalloc.get_traced_memory()[1] - baseline, size
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["json", "csv", "pdf"])
def test_memory_does_not_grow_with_the_number_of_entries(user, monkeypatch, fmt):
    monkeypatch.setattr(selectors, "ENTRY_CHUNK_SIZE", 100)
    small = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    large = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    book_many(small, 300)
    book_many(large, 2400)
    _peak_while_streaming(_statement(user, small), fmt)  # first uses: imports, caches, font metrics

    small_peak, small_size = _peak_while_streaming(_statement(user, small), fmt)
    large_peak, large_size = _peak_while_streaming(_statement(user, large), fmt)

    assert large_size > 7 * small_size  # eight times the entries, written out
    # Held in memory whole, eight times the entries would take several times the memory; streamed, a chunk of
    # 100 entries and the writer's state (for the PDF, a few dozen bytes per finished page) is what is held.
    assert large_peak < 1.4 * small_peak, (small_peak, large_peak)


def test_a_statement_whose_closing_does_not_add_up_is_cut_off_and_logged(user, caplog):
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    book_many(balance, 300)
    statement = _statement(user, balance)
    wrong = dataclasses.replace(
        statement, closing=dataclasses.replace(statement.closing, amount=statement.closing.amount + Decimal("0.01"))
    )
    written = []

    with caplog.at_level(logging.ERROR, logger="wallet.statements"), pytest.raises(StatementBroken):
        written.extend(statement_chunks(wrong, WRITERS["json"](wrong), request_id="req-1"))

    body = b"".join(written)
    assert b'"entries":[' in body and b"closing_balance" not in body  # every entry, never the closing
    (record,) = [r for r in caplog.records if r.name == "wallet.statements"]
    assert record.levelno == logging.ERROR
    assert record.balance_id == str(balance.pk) and record.request_id == "req-1"
    assert "opening + credits - debits" in record.error


@pytest.mark.parametrize("fmt", ["json", "csv", "pdf"])
def test_an_entry_that_breaks_the_chain_stops_the_stream_before_it_is_written(user, api, caplog, fmt):
    """A ledger changed behind the trigger's back (a restore, a hand-made row): the statement is not sent whole."""
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    book_many(balance, 300)
    broken = Transaction.objects.get(wallet_balance=balance, sequence=150)
    table = Transaction._meta.db_table
    with connection.cursor() as cursor:  # the test's transaction is rolled back: the ledger is left as it was
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER transactions_ledger_immutable")
        cursor.execute(f"UPDATE {table} SET amount = amount + 1 WHERE id = %s", [broken.pk])
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER transactions_ledger_immutable")
    end = timezone.now()

    response = api.get(statement_url(balance), period(end - timedelta(days=1), end, fmt))
    written = []
    with caplog.at_level(logging.ERROR, logger="wallet.statements"), pytest.raises(StatementBroken):
        written.extend(response.streaming_content)

    assert str(broken.pk).encode() not in b"".join(written)
    (record,) = [r for r in caplog.records if r.name == "wallet.statements"]
    assert str(broken.pk) in record.error


def test_a_json_statement_is_one_valid_document_when_it_adds_up(user):
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    book_many(balance, 250)
    statement = _statement(user, balance)

    document = json.loads(b"".join(statement_chunks(statement, WRITERS["json"](statement))))

    assert len(document["entries"]) == 251
    assert list(document) == [
        "balance_id",
        "wallet_id",
        "currency",
        "holder",
        "from",
        "to",
        "generated_at",
        "opening_balance",
        "entries",
        "totals",
        "total_credits",
        "total_debits",
        "closing_balance",
    ]


class _Arbitered:
    """What the statement needs of a gunicorn worker: its heartbeat."""

    def __init__(self) -> None:
        self.beats = 0

    def notify(self) -> None:
        self.beats += 1


def test_a_long_statement_tells_gunicorn_after_each_chunk_that_its_worker_is_alive(user, monkeypatch):
    monkeypatch.setattr(selectors, "ENTRY_CHUNK_SIZE", 100)
    worker = _Arbitered()
    monkeypatch.setattr(worker_heartbeat, "_worker", worker)
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=user))
    book_many(balance, 250)
    statement = _statement(user, balance)

    chunks = statement_chunks(statement, WRITERS["pdf"](statement))
    next(chunks)
    assert worker.beats == 0  # the opening needs no beat
    list(chunks)

    assert worker.beats == 3  # 251 entries, 100 a chunk


def test_each_gunicorn_worker_is_remembered_for_its_heartbeat(monkeypatch):
    hooks = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    monkeypatch.setattr(gc_tuning, "after_start", lambda: None)  # not this test's concern: it freezes the heap
    monkeypatch.setattr(worker_heartbeat, "_worker", None)
    worker = _Arbitered()

    hooks["post_worker_init"](worker)
    worker_heartbeat.beat()

    assert worker.beats == 1
