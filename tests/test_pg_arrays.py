"""Array literals written by hand (wallet_project/pg_arrays.py) read back through PostgreSQL as they were."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
from django.db import connection

from transactions.models import TransactionType
from wallet_project.pg_arrays import bare, literal, texts, uuids

pytestmark = pytest.mark.django_db

AWKWARD_TEXTS = [
    "",
    "NULL",
    "null",
    " leading and trailing ",
    'a "quoted" word',
    "back\\slash and \\\\ two",
    "comma, {braces}, and } alone",
    "new\nline\ttab",
    "Zoë, 東京, emoji 💶",
    "\\",
    '"',
    "{}",
    None,
]


def _read_back(sql_type: str, array: str) -> list:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{sql_type}[]", [array])
        return cursor.fetchone()[0]


def test_text_of_every_kind_reads_back_unchanged():
    assert _read_back("text", texts(AWKWARD_TEXTS)) == AWKWARD_TEXTS
    assert _read_back("text", literal(AWKWARD_TEXTS)) == AWKWARD_TEXTS


def test_text_enums_read_back_as_their_values():
    assert _read_back("text", texts([TransactionType.DEPOSIT, TransactionType.TRANSFER_OUT])) == [
        "DEPOSIT",
        "TRANSFER_OUT",
    ]


def test_uuids_decimals_and_integers_read_back_unchanged():
    ids = [uuid4(), None, uuid4()]
    amounts = [Decimal("12.50"), Decimal("1E+3"), Decimal("0E-8"), Decimal("0.0001"), Decimal("999999999999999.9999")]
    numbers = [0, -1, 2**62, None]

    assert _read_back("uuid", uuids(ids)) == ids
    assert _read_back("uuid", literal(ids)) == ids
    assert _read_back("numeric", bare(amounts)) == amounts
    assert _read_back("bigint", bare(numbers)) == numbers


def test_datetimes_read_back_as_the_same_moments():
    moments = [datetime(2026, 12, 5, 10, 0, 0, 123456, tzinfo=UTC), None]
    moments.append(datetime(2026, 12, 5, 12, 30, tzinfo=timezone(timedelta(hours=2))))

    assert _read_back("timestamptz", literal(moments)) == moments


def test_json_text_reads_back_as_the_same_json():
    documents = ['{"a": "x, \\"y\\"", "b": [1, 2]}', None]

    read = _read_back("jsonb", texts(documents))  # Django has psycopg hand jsonb over as text

    assert [None if document is None else json.loads(document) for document in read] == [
        {"a": 'x, "y"', "b": [1, 2]},
        None,
    ]


def test_an_empty_column_is_an_empty_array():
    assert _read_back("uuid", uuids([])) == []
    assert _read_back("text", texts([])) == []
