"""`GET balances/{id}/?as_of=`: the amount a balance had at an instant, read from its ledger chain."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from itertools import pairwise

import pytest
from django.db import connection
from django.utils import timezone

from conftest import error_code
from tests.factories import BalanceFactory, WalletFactory, funded_balance
from transactions.models import Transaction
from transactions.statements.instants import INVALID_INSTANT
from transactions.statements.selectors import balance_at
from transactions.tests.ledger_builder import book_many, book_other_types

pytestmark = pytest.mark.django_db


def _url(balance) -> str:
    return f"/api/v1/balances/{balance.pk}/"


def _chain(balance) -> list[tuple[datetime, int, Decimal]]:
    return list(
        Transaction.objects.filter(wallet_balance=balance)
        .order_by("sequence")
        .values_list("created_at", "sequence", "balance_after")
    )


def _from_chain(chain, instant: datetime) -> Decimal:
    """The oracle: walk the whole chain in order and keep the last amount reached at or before `instant`."""
    amount = Decimal(0)
    for created_at, _, balance_after in chain:
        if created_at > instant:
            break
        amount = balance_after
    return amount


def test_as_of_answers_what_the_chain_held_at_random_instants(user, api, staff_user):
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    book_other_types(balance, funded_balance(amount="50.00", currency="EUR"), staff_user)
    book_many(balance, 2500)
    chain = _chain(balance)
    assert len(chain) > 2500
    first, last = chain[0][0], chain[-1][0]
    rng = random.Random(22)
    span = (last - first).total_seconds()
    instants = [first + timedelta(seconds=rng.uniform(-0.5, span + 0.5)) for _ in range(120)]
    # The instants where the answer changes: at an entry's creation, and the microsecond before it.
    for created_at, _, _ in rng.sample(chain, 60):
        instants += [created_at, created_at - timedelta(microseconds=1)]

    for instant in instants:
        response = api.get(_url(balance), {"as_of": instant.isoformat()})

        assert response.status_code == HTTPStatus.OK, response.content
        assert response.json()["amount"] == f"{_from_chain(chain, instant):.2f}", instant


def test_as_of_answer_keeps_the_balance_shape_and_names_its_instant(user, api):
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    entry = Transaction.objects.get(wallet_balance=balance)
    instant = entry.created_at + timedelta(microseconds=5)

    body = api.get(_url(balance), {"as_of": instant.isoformat().replace("+00:00", "Z")}).json()

    assert body == {
        "id": str(balance.pk),
        "wallet_id": str(balance.wallet_id),
        "currency": "USD",
        "amount": "100.00",
        "updated_at": entry.created_at.isoformat().replace("+00:00", "Z"),
        "as_of": instant.isoformat().replace("+00:00", "Z"),
    }


def test_as_of_reads_an_instant_in_any_zone(user, api):
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    entry = Transaction.objects.get(wallet_balance=balance)
    in_tokyo = entry.created_at.astimezone(timezone.get_fixed_timezone(9 * 60))
    just_before = (entry.created_at - timedelta(microseconds=1)).astimezone(timezone.get_fixed_timezone(-5 * 60))

    at = api.get(_url(balance), {"as_of": in_tokyo.isoformat()}).json()
    before = api.get(_url(balance), {"as_of": just_before.isoformat()}).json()

    assert at["amount"] == "100.00"
    assert at["as_of"] == entry.created_at.isoformat().replace("+00:00", "Z")
    assert before["amount"] == "0.00"


def test_as_of_before_the_balance_existed_is_zero_with_no_update(user, api):
    balance = funded_balance(currency="JPY", amount="5000", wallet=WalletFactory(owner=user))

    body = api.get(_url(balance), {"as_of": "2001-01-01T00:00:00Z"}).json()

    assert body["amount"] == "0"  # JPY has no minor unit
    assert body["updated_at"] is None
    assert body["as_of"] == "2001-01-01T00:00:00Z"


def test_as_of_of_a_balance_without_entries_is_zero(user, api):
    balance = BalanceFactory(wallet=WalletFactory(owner=user))

    body = api.get(_url(balance), {"as_of": timezone.now().isoformat()}).json()

    assert (body["amount"], body["updated_at"]) == ("0.00", None)


def test_as_of_in_the_future_answers_the_amount_now_as_of_now(user, api):
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    book_many(balance, 20)
    balance.refresh_from_db()
    asked_at = timezone.now()

    body = api.get(_url(balance), {"as_of": "2999-01-01T00:00:00Z"}).json()

    answered = datetime.fromisoformat(body["as_of"])
    assert asked_at <= answered <= timezone.now()
    assert body["amount"] == f"{balance.amount:.2f}"


@pytest.mark.parametrize(
    "as_of",
    [
        "2999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59-01:00",  # after the last instant Python knows, once in UTC: later than now
    ],
)
def test_as_of_at_the_far_end_of_the_calendar_is_now(user, api, as_of):
    balance = funded_balance(amount="7.00", wallet=WalletFactory(owner=user))

    response = api.get(_url(balance), {"as_of": as_of})

    assert response.status_code == HTTPStatus.OK
    assert response.json()["amount"] == "7.00"


def test_as_of_at_the_start_of_the_calendar_is_zero(user, api):
    balance = funded_balance(amount="7.00", wallet=WalletFactory(owner=user))

    response = api.get(_url(balance), {"as_of": "0001-01-01T00:30:00+01:00"})

    assert response.status_code == HTTPStatus.OK
    assert response.json()["amount"] == "0.00"


@pytest.mark.parametrize(
    "as_of",
    [
        "2026-11-25T10:05:00",  # no zone: a different instant on each client
        "2026-11-25",
        "2026-11-25 10:05:00Z",
        "2026-02-30T10:05:00Z",
        "2026-11-25T24:00:00Z",
        "2026-12-31T23:59:60Z",  # a leap second: no such datetime
        "0000-01-01T00:00:00Z",
        "2026-11-25T10:05:00+24:00",
        "٢٠٢٦-11-25T10:05:00Z",
        "yesterday",
        "",
        " 2026-11-25T10:05:00Z",
    ],
)
def test_a_malformed_as_of_is_400(user, api, as_of):
    balance = funded_balance(amount="7.00", wallet=WalletFactory(owner=user))

    response = api.get(_url(balance), {"as_of": as_of})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"] == {"as_of": [INVALID_INSTANT]}


def test_as_of_of_another_users_balance_is_404(api, other_user):
    balance = funded_balance(amount="7.00", wallet=WalletFactory(owner=other_user))

    response = api.get(_url(balance), {"as_of": "2026-01-01T00:00:00Z"})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


def test_without_as_of_the_balance_is_answered_as_now(user, api):
    balance = funded_balance(amount="7.00", wallet=WalletFactory(owner=user))

    body = api.get(_url(balance)).json()

    assert set(body) == {"id", "wallet_id", "currency", "amount", "held", "available", "updated_at"}
    assert body["amount"] == "7.00"


# --- the plan: one probe of the history index, whatever the ledger's size -------------------------


def _lookup_sql(user, balance, instant):
    queryset = (
        Transaction.objects.filter(owner_id=user.pk, wallet_balance_id=balance.pk, created_at__lte=instant)
        .order_by("-created_at", "-sequence")
        .values_list("balance_after", "sequence", "created_at")[:1]
    )
    return queryset.query.sql_with_params()


def _explain(sql: str, params, *, generic: bool) -> str:
    with connection.cursor() as cursor:
        if not generic:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())
        # The plan a prepared statement gets once PostgreSQL stops planning it per call (prepared statements
        # are on in production): parameters unknown, estimates generic.
        placeholders = iter(range(1, len(params) + 1))
        prepared = sql.replace("%s", "{}").format(*(f"${n}" for n in placeholders))
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE as_of_probe AS {prepared}")
        try:
            values = connection.ops.compose_sql(", ".join(["%s"] * len(params)), params)
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) EXECUTE as_of_probe({values})")
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE as_of_probe")


def _rows_read_by_index(plan: str) -> int:
    line = next(line for line in plan.splitlines() if "Index Scan using txn_owner_balance_history" in line)
    return int(line.split("actual time=", 1)[1].split("rows=", 1)[1].split()[0])


@pytest.mark.parametrize("generic", [False, True], ids=["custom-plan", "generic-plan"])
def test_as_of_is_one_probe_of_the_balance_history_index(user, other_user, generic):
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    neighbour = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    stranger = funded_balance(amount="100.00", wallet=WalletFactory(owner=other_user))
    for each in (balance, neighbour, stranger):
        book_many(each, 3000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Transaction._meta.db_table}")
    chain = _chain(balance)

    # Early in the chain (most of the balance's entries are newer), in the middle, and at the end.
    for position in (10, len(chain) // 2, len(chain) - 1):
        instant = chain[position][0]
        plan = _explain(*_lookup_sql(user, balance, instant), generic=generic)

        assert "Index Scan using txn_owner_balance_history" in plan, plan
        assert "Seq Scan" not in plan and "Bitmap" not in plan, plan
        # The rows with the first timestamp found, and the one after them that ends the group: not the ledger.
        assert _rows_read_by_index(plan) <= 2, plan
        amount = balance_at(owner_id=user.pk, balance_id=balance.pk, instant=instant).amount
        assert amount == chain[position][2]


def test_as_of_breaks_a_tie_in_time_by_the_chain(user):
    """Entries of one posting may share a `created_at` (the clock's microseconds): the balance at that instant is
    the one after the later of them in the chain, whatever the order of their ids."""
    balance = funded_balance(amount="100.00", wallet=WalletFactory(owner=user))
    book_many(balance, 40)
    entries = list(Transaction.objects.filter(wallet_balance=balance).order_by("sequence"))
    # Two neighbours whose ids run against the chain, so that a tie broken by id would pick the earlier one.
    earlier, later = next((a, b) for a, b in pairwise(entries[1:]) if b.pk < a.pk)
    table = Transaction._meta.db_table
    with connection.cursor() as cursor:  # the test's transaction is rolled back: the ledger is left as it was
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the chain-tip checks of the postings above run now
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER transactions_ledger_immutable")
        cursor.execute(f"UPDATE {table} SET created_at = %s WHERE id = %s", [earlier.created_at, later.pk])
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER transactions_ledger_immutable")

    point = balance_at(owner_id=user.pk, balance_id=balance.pk, instant=earlier.created_at)

    assert (point.amount, point.sequence) == (later.balance_after, later.sequence)


def test_instants_are_utc_aware():
    from transactions.statements.instants import parse_instant

    assert parse_instant("2026-11-25T10:05:00.1234569+01:30") == datetime(2026, 11, 25, 8, 35, 0, 123456, UTC)
    assert parse_instant("2026-11-25t10:05:00z") == datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
