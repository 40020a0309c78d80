"""The raw-SQL baselines: pgbench scripts doing what each HTTP scenario does, and nothing else.

The full raw SQL works on the service's own tables. A transfer is what
PostgreSQL has to do for one there, at the least: lock both rows
in id order (`FOR NO KEY UPDATE`), update both balances (amount and
last_sequence, `RETURNING` them), insert the two ledger rows so that the chain
trigger accepts them (`sequence` = the balance's new last_sequence,
`balance_after` = its new amount), commit. Ids are written into the scripts as
literals (one script per pair, pgbench picks a script at random per
transaction), so the baseline pays for no lookup the API does not make.

The minimal raw SQL (below, `CREATE_MINIMAL`) is the least any ledger must do
for a transfer, on two tables of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SCRIPTS = 100  # pgbench accepts at most 128 -f scripts


@dataclass(frozen=True)
class Balance:
    id: str
    wallet_id: str
    owner_id: str


# The ids the service writes: time-ordered UUIDs (version 7, wallet_project/ids.py). PostgreSQL 15 has no
# uuidv7(): this function, created in the bench database (CREATE_UUID7), sets the first 48 bits of a random
# UUID to the Unix time in milliseconds and its version to 7.
UUID7 = "bench_uuid7()"
CREATE_UUID7 = """
CREATE OR REPLACE FUNCTION bench_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
            PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
            FROM 1 FOR 6), 52, 1), 53, 1),
        'hex')::uuid
$$
"""

_INSERT = (
    "INSERT INTO transactions_transaction (id, type, amount, balance_after, sequence, related_wallet_balance_id, "
    "exchange_rate, reference, source, description, merchant, created_at, created_by_id, currency_id, owner_id, "
    "wallet_id, wallet_balance_id) VALUES (" + UUID7 + ", '{type}', {amount}, :{var}_amount, :{var}_seq, "
    "{related}, NULL, {reference}, 'API', '', '', clock_timestamp(), '{owner}', 'USD', '{owner}', '{wallet}', '{id}')"
)


def _update(balance: Balance, sign: str, amount: str, var: str) -> str:
    return (
        f"UPDATE wallets_walletbalance SET amount = amount {sign} {amount}, last_sequence = last_sequence + 1, "
        f"updated_at = clock_timestamp() WHERE id = '{balance.id}' "
        f"RETURNING amount AS {var}_amount, last_sequence AS {var}_seq \\gset"
    )


def transfer(src: Balance, dst: Balance, amount: str = "0.01") -> str:
    low, high = sorted([src.id, dst.id])
    out = _INSERT.format(
        type="TRANSFER_OUT",
        amount=amount,
        var="s",
        related=f"'{dst.id}'",
        reference=UUID7,
        owner=src.owner_id,
        wallet=src.wallet_id,
        id=src.id,
    )
    return "\n".join(
        [
            "BEGIN;",
            f"SELECT id FROM wallets_walletbalance WHERE id IN ('{low}', '{high}') ORDER BY id FOR NO KEY UPDATE;",
            _update(src, "-", amount, "s"),
            _update(dst, "+", amount, "d"),
            out + " RETURNING reference AS ref \\gset",
            _INSERT.format(
                type="TRANSFER_IN",
                amount=amount,
                var="d",
                related=f"'{src.id}'",
                reference=":ref",
                owner=dst.owner_id,
                wallet=dst.wallet_id,
                id=dst.id,
            )
            + ";",
            "COMMIT;",
            "",
        ]
    )


def deposit(balance: Balance, amount: str = "0.01") -> str:
    return "\n".join(
        [
            "BEGIN;",
            f"SELECT id FROM wallets_walletbalance WHERE id = '{balance.id}' FOR NO KEY UPDATE;",
            _update(balance, "+", amount, "b"),
            _INSERT.format(
                type="DEPOSIT",
                amount=amount,
                var="b",
                related="NULL",
                reference=UUID7,
                owner=balance.owner_id,
                wallet=balance.wallet_id,
                id=balance.id,
            )
            + ";",
            "COMMIT;",
            "",
        ]
    )


_ENTRY_COLUMNS = (
    "id, wallet_balance_id, wallet_id, currency_id, type, amount, balance_after, sequence, "
    "related_wallet_balance_id, exchange_rate, reference, source, description, merchant, created_at"
)


def balance_read(balance: Balance) -> str:
    return (
        "SELECT b.id, b.wallet_id, b.currency_id, b.amount, b.updated_at FROM wallets_walletbalance b "
        f"JOIN wallets_wallet w ON w.id = b.wallet_id "
        f"WHERE b.id = '{balance.id}' AND w.owner_id = '{balance.owner_id}';\n"
    )


def history_page(*, owner_id: str, wallet_balance_id: str | None = None, before: str | None = None) -> str:
    where = [f"owner_id = '{owner_id}'"]
    if wallet_balance_id:
        where.append(f"wallet_balance_id = '{wallet_balance_id}'")
    if before:
        where.append(f"created_at < '{before}'")
    return (
        f"SELECT {_ENTRY_COLUMNS} FROM transactions_transaction WHERE {' AND '.join(where)} "
        "ORDER BY created_at DESC, id DESC LIMIT 51;\n"
    )


# --- the minimal ledger -----------------------------------------------------------------------
#
# The second baseline: the least any ledger must do for a transfer, on tables of its own in the bench
# database. A balance is a bigint id and an amount that may not go below zero; an entry says which balance,
# what, how much, the balance after it, the other balance and when, and is found again by one index on
# (balance, created_at), a history's. A transfer locks both rows in id order, updates both amounts and
# inserts both entries in one statement. No chain, sequence, owner, currency or trigger: what the service's
# ledger does beyond this is what its PostgreSQL CPU per transfer is compared against.

MINIMAL_BALANCES = 10_000
MINIMAL_OPENING = "1000000.00"
# The pair of the hot comparison: two balances of the table, moved both ways.
MINIMAL_HOT_PAIR = (1, 2)

CREATE_MINIMAL = [
    "DROP TABLE IF EXISTS bench_min_entry, bench_min_balance",
    "CREATE TABLE bench_min_balance (id bigint PRIMARY KEY, amount numeric NOT NULL CHECK (amount >= 0))",
    "CREATE TABLE bench_min_entry (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, balance bigint NOT NULL, "
    "type text NOT NULL, amount numeric NOT NULL, balance_after numeric NOT NULL, counterpart bigint, "
    "created_at timestamptz NOT NULL)",
    "CREATE INDEX bench_min_entry_history ON bench_min_entry (balance, created_at)",
    f"INSERT INTO bench_min_balance (id, amount) SELECT i, {MINIMAL_OPENING} "
    f"FROM generate_series(1, {MINIMAL_BALANCES}) AS i",
]

_MINIMAL_TRANSFER = r"""\set low least(:a, :b)
\set high greatest(:a, :b)
BEGIN;
SELECT id FROM bench_min_balance WHERE id IN (:low, :high) ORDER BY id FOR NO KEY UPDATE;
UPDATE bench_min_balance SET amount = amount - {amount} WHERE id = :a RETURNING amount AS a_after \gset
UPDATE bench_min_balance SET amount = amount + {amount} WHERE id = :b RETURNING amount AS b_after \gset
INSERT INTO bench_min_entry (balance, type, amount, balance_after, counterpart, created_at) VALUES (:a, 'TRANSFER_OUT', {amount}, :a_after, :b, clock_timestamp()), (:b, 'TRANSFER_IN', {amount}, :b_after, :a, clock_timestamp());
COMMIT;
"""  # noqa: E501


def minimal_transfer_random(balances: int, amount: str = "0.01") -> str:
    """A transfer of the minimal ledger between two different balances drawn at random among ids 1..`balances`.

    `b` is drawn among the `balances - 1` others and shifted past `a`: every ordered pair is equally likely,
    with no retry.
    """
    if not 2 <= balances <= MINIMAL_BALANCES:
        raise ValueError(f"the minimal ledger has {MINIMAL_BALANCES:,} balances; asked for {balances:,}")
    draw = (
        f"\\set a random(1, {balances})\n"
        f"\\set b random(1, {balances - 1})\n"
        "\\set b case when :b >= :a then :b + 1 else :b end\n"
    )
    return draw + _MINIMAL_TRANSFER.format(amount=amount)


def minimal_transfer_between(source: int, destination: int, amount: str = "0.01") -> str:
    """A transfer of the minimal ledger from one given balance to another (the hot pair's two directions)."""
    return f"\\set a {source}\n\\set b {destination}\n" + _MINIMAL_TRANSFER.format(amount=amount)
