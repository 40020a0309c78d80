"""The rules PostgreSQL holds itself, whoever writes (DESIGN.md, "Invariants the code and the database both hold").

Each refused statement runs inside `transaction.atomic()`, a savepoint in the
test's transaction, so the error rolls back only that statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from tests.factories import UserFactory, WalletFactory, funded_balance
from transactions.models import ImmutableLedgerEntry, Transaction, TransactionType
from transactions.services import deposit_create
from wallets.models import WalletBalance


@pytest.fixture
def balance(user) -> WalletBalance:
    """A USD balance holding 15.00 in two entries (sequence 1 and 2)."""
    funded = funded_balance(wallet=WalletFactory(owner=user), currency="USD", amount="10.00")
    deposit_create(wallet_balance_id=funded.pk, amount=Decimal("5.00"), owner=user, created_by=user)
    funded.refresh_from_db()
    return funded


def run_sql(sql: str, params: list | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def entry_row_values(balance: WalletBalance, **overrides) -> dict:
    values = {
        "id": uuid.uuid4(),
        "wallet_balance_id": balance.pk,
        "wallet_id": balance.wallet_id,
        "owner_id": balance.wallet.owner_id,
        "currency_id": balance.currency_id,
        "type": TransactionType.DEPOSIT,
        "amount": Decimal("1.00"),
        "balance_after": balance.amount + Decimal("1.00"),
        "sequence": balance.last_sequence + 1,
        "reference": uuid.uuid4(),
        "source": "SYSTEM",
        "description": "",
        "merchant": "",
    }
    values.update(overrides)
    return values


def insert_entry(**values) -> None:
    columns = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    run_sql(f"INSERT INTO transactions_transaction ({columns}) VALUES ({placeholders})", list(values.values()))


class _Undo(Exception):
    pass


@contextmanager
def undone() -> Iterator[None]:
    """A savepoint rolled back at its end: a balance row a test moved by hand goes back with it (the balance's
    tip is checked when the transaction commits, and the test's teardown checks every deferred constraint)."""
    try:
        with transaction.atomic():
            yield
            raise _Undo
    except _Undo:
        pass


def checked_now() -> None:
    """Run the deferred checks (the balances' tips) now, as a commit would."""
    run_sql("SET CONSTRAINTS ALL IMMEDIATE")


def set_balance_row(balance: WalletBalance, *, amount: Decimal, last_sequence: int) -> None:
    run_sql(
        "UPDATE wallets_walletbalance SET amount = %s, last_sequence = %s WHERE id = %s",
        [amount, last_sequence, balance.pk],
    )


def ledger_rows(balance: WalletBalance) -> list[tuple]:
    return list(
        Transaction.objects.filter(wallet_balance=balance)
        .order_by("sequence")
        .values_list("sequence", "amount", "balance_after", "type")
    )


# --- immutability ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_raw_sql_cannot_update_a_ledger_entry(balance):
    before = ledger_rows(balance)

    with pytest.raises(IntegrityError, match="immutable"):
        run_sql("UPDATE transactions_transaction SET amount = amount + 1 WHERE wallet_balance_id = %s", [balance.pk])

    assert ledger_rows(balance) == before


@pytest.mark.django_db
def test_raw_sql_cannot_update_even_the_description_of_an_entry(balance):
    with pytest.raises(IntegrityError, match="immutable"):
        run_sql("UPDATE transactions_transaction SET description = 'edited' WHERE wallet_balance_id = %s", [balance.pk])

    assert set(Transaction.objects.filter(wallet_balance=balance).values_list("description", flat=True)) != {"edited"}


@pytest.mark.django_db
def test_raw_sql_cannot_delete_a_ledger_entry(balance):
    before = ledger_rows(balance)

    with pytest.raises(IntegrityError, match="immutable"):
        run_sql("DELETE FROM transactions_transaction WHERE wallet_balance_id = %s", [balance.pk])

    assert ledger_rows(balance) == before


@pytest.mark.django_db
def test_the_orm_refuses_to_change_or_delete_an_entry(balance):
    entry = Transaction.objects.filter(wallet_balance=balance).first()

    entry.description = "edited"
    with pytest.raises(ImmutableLedgerEntry):
        entry.save()
    with pytest.raises(ImmutableLedgerEntry):
        entry.delete()
    with pytest.raises(ImmutableLedgerEntry):
        Transaction.objects.filter(pk=entry.pk).update(description="edited")
    with pytest.raises(ImmutableLedgerEntry):
        Transaction.objects.filter(pk=entry.pk).delete()

    entry.refresh_from_db()
    assert entry.description != "edited"


# --- the chain -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_insert_that_does_not_match_its_balance_is_refused(balance):
    before = ledger_rows(balance)

    # The balance row was not moved along, so sequence 3 and 16.00 match nothing.
    with pytest.raises(IntegrityError, match="does not match its balance"):
        insert_entry(**entry_row_values(balance))

    assert ledger_rows(balance) == before


@pytest.mark.django_db
def test_an_insert_that_reuses_a_sequence_is_refused(balance):
    before = ledger_rows(balance)

    with pytest.raises(IntegrityError):
        insert_entry(**entry_row_values(balance, sequence=2, balance_after=balance.amount))

    assert ledger_rows(balance) == before


@pytest.mark.django_db
def test_an_insert_whose_balance_after_does_not_follow_from_the_previous_entry_is_refused(balance):
    # The balance row says 20.00 at sequence 3, but 15.00 + a deposit of 1.00 is 16.00.
    with undone():
        set_balance_row(balance, amount=Decimal("20.00"), last_sequence=3)
        with pytest.raises(IntegrityError, match="breaks the chain"):
            insert_entry(**entry_row_values(balance, amount=Decimal("1.00"), balance_after=Decimal("20.00")))


@pytest.mark.django_db
def test_an_insert_that_skips_a_sequence_number_is_refused(balance):
    with undone():
        set_balance_row(balance, amount=Decimal("16.00"), last_sequence=4)
        with pytest.raises(IntegrityError, match="breaks the chain"):
            insert_entry(**entry_row_values(balance, sequence=4, balance_after=Decimal("16.00")))


@pytest.mark.django_db
def test_a_debit_must_subtract_from_the_previous_balance_after(balance):
    with undone():
        set_balance_row(balance, amount=Decimal("16.00"), last_sequence=3)
        with pytest.raises(IntegrityError, match="breaks the chain"):
            # A withdrawal of 1.00 after 15.00 cannot leave 16.00.
            insert_entry(
                **entry_row_values(
                    balance, type=TransactionType.WITHDRAWAL, amount=Decimal("1.00"), balance_after=Decimal("16.00")
                )
            )


@pytest.mark.django_db
def test_an_insert_that_chains_correctly_is_accepted(balance):
    set_balance_row(balance, amount=Decimal("16.00"), last_sequence=3)

    insert_entry(**entry_row_values(balance, amount=Decimal("1.00"), balance_after=Decimal("16.00")))

    assert [row[0] for row in ledger_rows(balance)] == [1, 2, 3]
    assert ledger_rows(balance)[-1][2] == Decimal("16.00")


def insert_entries(rows: list[dict]) -> None:
    """Several entries in one INSERT, in the order given (as the posting engine writes them)."""
    columns = ", ".join(rows[0])
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(rows[0])) + ")"] * len(rows))
    run_sql(
        f"INSERT INTO transactions_transaction ({columns}) VALUES {placeholders}",
        [value for row in rows for value in row.values()],
    )


@pytest.mark.django_db
def test_one_statement_may_insert_several_entries_of_a_balance_each_chained_to_the_one_before(balance):
    # A credit then a debit on one balance, as a refund with its cashback reversal writes them.
    with transaction.atomic():
        set_balance_row(balance, amount=Decimal("19.00"), last_sequence=4)
        insert_entries(
            [
                entry_row_values(
                    balance,
                    type=TransactionType.REFUND,
                    amount=Decimal("5.00"),
                    balance_after=Decimal("20.00"),
                    sequence=3,
                ),
                entry_row_values(
                    balance,
                    type=TransactionType.LOYALTY_REVERSAL,
                    amount=Decimal("1.00"),
                    balance_after=Decimal("19.00"),
                    sequence=4,
                ),
            ]
        )

    assert [row[0] for row in ledger_rows(balance)] == [1, 2, 3, 4]


@pytest.mark.django_db
def test_an_entry_below_the_newest_that_does_not_chain_is_refused(balance):
    before = ledger_rows(balance)
    with undone():
        set_balance_row(balance, amount=Decimal("19.00"), last_sequence=4)
        with pytest.raises(IntegrityError, match="breaks the chain"):
            insert_entries(
                [
                    # 15.00 + 5.00 is 20.00, not 21.00: the newest matches the balance, the one before does not chain.
                    entry_row_values(
                        balance,
                        type=TransactionType.REFUND,
                        amount=Decimal("5.00"),
                        balance_after=Decimal("21.00"),
                        sequence=3,
                    ),
                    entry_row_values(
                        balance,
                        type=TransactionType.LOYALTY_REVERSAL,
                        amount=Decimal("2.00"),
                        balance_after=Decimal("19.00"),
                        sequence=4,
                    ),
                ]
            )

    assert ledger_rows(balance) == before


@pytest.mark.django_db
def test_entries_of_one_statement_must_end_at_the_balance(balance):
    with undone():
        set_balance_row(balance, amount=Decimal("17.00"), last_sequence=4)
        with pytest.raises(IntegrityError, match="does not match its balance"):
            insert_entries(
                [
                    entry_row_values(balance, amount=Decimal("1.00"), balance_after=Decimal("16.00"), sequence=3),
                    entry_row_values(balance, amount=Decimal("2.00"), balance_after=Decimal("18.00"), sequence=4),
                ]
            )


@pytest.mark.django_db
def test_entries_may_not_stop_short_of_the_balance(balance):
    # The balance moved on two entries, the INSERT brings one: every row chains, but the chain ends before the
    # balance. No row can see what comes later; the balance's tip is checked when the transaction commits.
    before = ledger_rows(balance)
    with undone():
        set_balance_row(balance, amount=Decimal("18.00"), last_sequence=4)
        insert_entries([entry_row_values(balance, amount=Decimal("1.00"), balance_after=Decimal("16.00"), sequence=3)])
        with pytest.raises(IntegrityError, match=r"holds 18.0000 at sequence 4, but its ledger entry 4 says nothing"):
            checked_now()

    assert ledger_rows(balance) == before


@pytest.mark.django_db
def test_a_balance_moved_without_an_entry_is_refused_at_commit(balance):
    with undone():
        set_balance_row(balance, amount=Decimal("15.00"), last_sequence=3)
        with pytest.raises(IntegrityError, match="at sequence 3, but its ledger entry 3 says nothing"):
            checked_now()
    with undone():
        set_balance_row(balance, amount=Decimal("99.00"), last_sequence=2)
        with pytest.raises(IntegrityError, match=r"holds 99.0000 at sequence 2, but its ledger entry 2 says 15.0000"):
            checked_now()


@pytest.mark.django_db
def test_a_balance_never_goes_back_in_its_chain(balance):
    with undone():
        # Entry 1 says 10.00: the tip alone would match, but entry 2 would then lie beyond the balance.
        set_balance_row(balance, amount=Decimal("10.00"), last_sequence=1)
        with pytest.raises(IntegrityError, match="went back from sequence 2 to 1"):
            checked_now()


@pytest.mark.django_db
def test_a_new_balance_starts_empty_unless_its_first_entry_comes_with_it(user):
    wallet = WalletFactory(owner=user)
    with undone():
        run_sql(
            "INSERT INTO wallets_walletbalance (id, wallet_id, currency_id, amount, held_amount, last_sequence,"
            " created_at, updated_at) VALUES (%s, %s, 'USD', 5, 0, 0, now(), now())",
            [uuid.uuid4(), wallet.pk],
        )
        with pytest.raises(IntegrityError, match=r"holds 5.0000 at sequence 0"):
            checked_now()


@pytest.mark.parametrize("kind", ["LOYALTY", "LOYALTY_RETURN"])
@pytest.mark.django_db
def test_the_chain_counts_the_cashback_credits_as_credits(balance, kind):
    set_balance_row(balance, amount=Decimal("16.00"), last_sequence=3)

    insert_entry(**entry_row_values(balance, type=kind, amount=Decimal("1.00"), balance_after=Decimal("16.00")))

    assert ledger_rows(balance)[-1][3] == kind


@pytest.mark.parametrize("kind", ["LOYALTY_FUNDING", "LOYALTY_REVERSAL"])
@pytest.mark.django_db
def test_the_chain_counts_the_cashback_debits_as_debits(balance, kind):
    with undone():
        set_balance_row(balance, amount=Decimal("16.00"), last_sequence=3)
        with pytest.raises(IntegrityError, match="breaks the chain"):
            insert_entry(**entry_row_values(balance, type=kind, amount=Decimal("1.00"), balance_after=Decimal("16.00")))


# --- balances --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_database_refuses_a_negative_balance(balance):
    with pytest.raises(IntegrityError, match="walletbalance_amount_non_negative"):
        run_sql("UPDATE wallets_walletbalance SET amount = -0.01 WHERE id = %s", [balance.pk])

    balance.refresh_from_db()
    assert balance.amount == Decimal("15.00")


@pytest.mark.django_db
def test_the_database_refuses_a_second_balance_in_one_currency(balance):
    with pytest.raises(IntegrityError, match="walletbalance_one_per_currency"):
        run_sql(
            "INSERT INTO wallets_walletbalance (id, wallet_id, currency_id, amount, last_sequence, created_at)"
            " VALUES (%s, %s, 'USD', 0, 0, now())",
            [uuid.uuid4(), balance.wallet_id],
        )

    assert WalletBalance.objects.filter(wallet_id=balance.wallet_id).count() == 1


@pytest.mark.django_db
def test_the_database_refuses_a_ledger_entry_with_a_non_positive_amount(balance):
    with undone():
        set_balance_row(balance, amount=balance.amount, last_sequence=3)
        with pytest.raises(IntegrityError):
            insert_entry(**entry_row_values(balance, amount=Decimal("0"), balance_after=balance.amount, sequence=3))


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"type": "GIFT"}, "txn_type_known"),
        ({"type": "deposit"}, "txn_type_known"),  # the values are matched exactly, case included
        ({"source": "BATCH"}, "txn_source_known"),
        ({"related_wallet_balance_id": uuid.uuid4()}, "txn_only_transfers_have_counterparts"),
        ({"exchange_rate": Decimal("1.1")}, "txn_only_transfers_have_counterparts"),
        ({"type": TransactionType.TRANSFER_IN}, "txn_transfers_have_counterpart"),
    ],
)
@pytest.mark.django_db
def test_the_database_refuses_an_entry_of_an_unknown_kind_or_with_a_counterpart_it_may_not_have(
    balance, overrides, constraint
):
    with undone(), pytest.raises(IntegrityError, match=constraint):
        insert_entry(**next_entry(balance, **overrides))


@pytest.mark.django_db
def test_the_ledgers_membership_checks_are_stored_as_one_array_constant():
    # PostgreSQL reads them back from this text at every INSERT: `IN (…)` is one node per value.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = ANY(%s)",
            [["txn_type_known", "txn_source_known", "txn_transfers_have_counterpart", "event_type_known"]],
        )
        definitions = dict(cursor.fetchall())
    assert len(definitions) == 4
    assert all("::text[]" in text and "ARRAY[" not in text for text in definitions.values()), definitions


# --- references: what the foreign keys held, held by the triggers ---------------------------------
# Each bad write below was refused by a foreign key before migration 0015, and must still be refused.


def next_entry(balance: WalletBalance, **overrides) -> dict:
    """A deposit of 1.00 that chains onto the balance, with the balance row moved along to it."""
    set_balance_row(balance, amount=balance.amount + Decimal("1.00"), last_sequence=balance.last_sequence + 1)
    return entry_row_values(balance, **overrides)


@pytest.mark.django_db
def test_an_entry_of_no_balance_is_refused(balance):
    with undone(), pytest.raises(IntegrityError, match="names no balance"):
        insert_entry(**next_entry(balance, wallet_balance_id=uuid.uuid4()))


@pytest.mark.parametrize(
    "column", ["wallet_id", "owner_id", "currency_id", "wallet_id:missing", "owner_id:missing", "currency_id:missing"]
)
@pytest.mark.django_db
def test_an_entry_must_name_its_balances_wallet_owner_and_currency(balance, column):
    name, _, missing = column.partition(":")
    other_wallet = WalletFactory()
    others = {
        "wallet_id": uuid.uuid4() if missing else other_wallet.pk,
        "owner_id": uuid.uuid4() if missing else other_wallet.owner_id,
        "currency_id": "ZZZ" if missing else "EUR",
    }
    before = ledger_rows(balance)
    with undone(), pytest.raises(IntegrityError, match=r"its balance .* is of wallet"):
        insert_entry(**next_entry(balance, **{name: others[name]}))

    assert ledger_rows(balance) == before


@pytest.mark.django_db
def test_a_counterpart_must_be_a_balance_with_entries(balance, user):
    empty = WalletBalance.objects.create(wallet=WalletFactory(owner=user), currency_id="USD")
    for counterpart in (uuid.uuid4(), empty.pk):
        with undone(), pytest.raises(IntegrityError, match="names a counterpart"):
            insert_entry(**next_entry(balance, type=TransactionType.TRANSFER_IN, related_wallet_balance_id=counterpart))
    other = funded_balance(wallet=WalletFactory(owner=user), currency="USD", amount="1.00")
    with undone():
        insert_entry(**next_entry(balance, type=TransactionType.TRANSFER_IN, related_wallet_balance_id=other.pk))
        checked_now()


@pytest.mark.django_db
def test_an_entry_asked_for_by_no_user_is_refused(balance):
    # Refused as an inactive actor's entry would be (insufficient_privilege), before any foreign key could.
    with undone(), pytest.raises(DatabaseError, match="asked for by inactive user"):
        insert_entry(**next_entry(balance, created_by_id=uuid.uuid4()))


@pytest.mark.django_db
def test_an_entry_asked_for_by_an_inactive_user_is_refused_before_its_balance_is_looked_at(balance, user):
    # The posting engine answers this error as an inactive account (a user deactivated after its locked read).
    staff = UserFactory(is_active=False)
    with undone(), pytest.raises(DatabaseError, match="asked for by inactive user") as refused:
        insert_entry(**next_entry(balance, created_by_id=staff.pk, wallet_balance_id=uuid.uuid4()))
    assert refused.value.__cause__.sqlstate == "42501"  # insufficient_privilege
    with undone():
        insert_entry(**next_entry(balance, created_by_id=user.pk))
        checked_now()


@pytest.mark.django_db
def test_a_balance_with_entries_cannot_be_deleted(balance, user):
    with pytest.raises(IntegrityError, match="has ledger entries"):
        run_sql("DELETE FROM wallets_walletbalance WHERE id = %s", [balance.pk])
    empty = WalletBalance.objects.create(wallet=WalletFactory(owner=user), currency_id="USD")
    run_sql("DELETE FROM wallets_walletbalance WHERE id = %s", [empty.pk])

    assert WalletBalance.objects.filter(pk=balance.pk).exists()
    assert not WalletBalance.objects.filter(pk=empty.pk).exists()


@pytest.mark.django_db
def test_what_an_entry_names_cannot_be_deleted_under_it(balance):
    # The wallet, the currency and the owner stay while the balance does (their own foreign keys).
    for sql, param in (
        ("DELETE FROM wallets_wallet WHERE id = %s", balance.wallet_id),
        ("DELETE FROM wallets_currency WHERE code = %s", balance.currency_id),
        ("DELETE FROM accounts_user WHERE id = %s", balance.wallet.owner_id),
    ):
        with undone(), pytest.raises(IntegrityError):
            run_sql(sql, [param])
            checked_now()

    assert WalletBalance.objects.filter(pk=balance.pk).exists()


@pytest.mark.django_db
def test_a_user_who_booked_entries_for_others_cannot_be_deleted(balance):
    staff = UserFactory(is_staff=True)
    bystander = UserFactory()
    with undone():
        insert_entry(**next_entry(balance, created_by_id=staff.pk))
        with pytest.raises(IntegrityError, match="booked ledger entries for others"):
            run_sql("DELETE FROM accounts_user WHERE id = %s", [staff.pk])
    run_sql("DELETE FROM accounts_user WHERE id = %s", [bystander.pk])

    assert not type(bystander).objects.filter(pk=bystander.pk).exists()


@pytest.mark.django_db
def test_the_guard_of_staff_actors_reads_a_partial_index(balance):
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN SELECT 1 FROM transactions_transaction"
            " WHERE created_by_id = %s AND (created_by_id < owner_id OR created_by_id > owner_id)",
            [uuid.uuid4()],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "txn_created_by_others" in plan
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('txn_created_by_others'::regclass)")
        (definition,) = cursor.fetchone()
    assert "IS NULL" not in definition and "NOT" not in definition  # entries with no actor are not in it
