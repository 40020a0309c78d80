"""The harness's baselines and accounting (`bench.run`, `bench.sql`, `bench.lua`), without a load run.

The minimal ledger's pgbench scripts run against the test database and must
move money as a ledger does; the batch seed must leave balances as a deposit
through the API leaves them; the batch generator must write bodies the
endpoint authorises; and PostgreSQL's CPU per transfer is only as good as the
span of polls it is read over and the transactions counted in it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from django.db import connection

from bench import lua, sql
from bench.run import (
    BATCH_OPENING,
    BATCH_PAYERS,
    abba,
    batch_invariants,
    batch_owners,
    bulk_balances,
    pgbench_log,
    postgres_window,
    target_rows,
    transactions_between,
)
from tests.factories import UserFactory
from tests.invariants import assert_balance_chains
from transactions.models import Transaction, TransactionType
from transactions.services import transfer_create
from wallets.models import WalletBalance

GUNICORN, BACKEND, PGBENCH_1, PGBENCH_2 = ("gunicorn", 10), ("postgres", 20), ("postgres", 31), ("postgres", 32)


def test_three_sides_alternate_and_mirror() -> None:
    assert abba(2, ("http", "sql", "minimal")) == ["http", "sql", "minimal", "minimal", "sql", "http"]
    assert abba(1, ("http", "minimal")) == ["http", "minimal"]


def test_the_window_spans_the_polls_while_every_new_connection_was_open() -> None:
    samples = [
        (100.0, {GUNICORN: 5.0, BACKEND: 1.0}),
        (100.2, {GUNICORN: 5.0, BACKEND: 1.0, PGBENCH_1: 0.01}),  # the second connection not yet made
        (100.4, {GUNICORN: 5.1, BACKEND: 1.0, PGBENCH_1: 0.05, PGBENCH_2: 0.02}),
        (100.6, {GUNICORN: 5.1, BACKEND: 1.0, PGBENCH_1: 0.15, PGBENCH_2: 0.12}),
        (100.8, {GUNICORN: 5.2, BACKEND: 1.1, PGBENCH_1: 0.25, PGBENCH_2: 0.22}),
        (101.0, {GUNICORN: 5.2, BACKEND: 1.1, PGBENCH_1: 0.29}),  # one gone: its last tenth is lost
        (101.2, {GUNICORN: 5.2, BACKEND: 1.1}),
    ]
    window = postgres_window(samples, connections=2)
    assert window is not None
    assert (window["from"], window["to"]) == (100.4, 100.8)
    # Backends only (the web worker's own CPU is no PostgreSQL time): 0.1 + 0.2 + 0.2.
    assert window["postgres_cpu_s"] == pytest.approx(0.5)


def test_a_backend_there_from_the_start_does_not_end_the_window_when_it_goes() -> None:
    samples = [
        (0.0, {BACKEND: 1.0}),
        (0.2, {BACKEND: 1.0, PGBENCH_1: 0.1}),
        (0.4, {PGBENCH_1: 0.3}),
        (0.6, {PGBENCH_1: 0.5}),
    ]
    window = postgres_window(samples, connections=1)
    assert window is not None
    assert (window["from"], window["to"]) == (0.2, 0.6)
    assert window["postgres_cpu_s"] == pytest.approx(0.4)


def test_no_window_when_the_connections_never_were_all_open_at_one_poll() -> None:
    samples = [(0.0, {}), (0.2, {PGBENCH_1: 0.1}), (0.4, {PGBENCH_2: 0.1}), (0.6, {})]
    assert postgres_window(samples, connections=2) is None
    assert postgres_window([], connections=1) is None


def test_transactions_are_counted_after_the_start_up_to_the_end() -> None:
    finished = [10.0, 10.1, 10.5, 11.0, 11.2]
    assert transactions_between(finished, 10.1, 11.0) == 2  # 10.5 and 11.0
    assert transactions_between(finished, 0, 100) == 5


def test_the_pgbench_log_gives_latencies_and_ends_of_done_transactions(tmp_path: Path) -> None:
    log = tmp_path / "log.123"
    log.write_text("0 1 2500 0 1700000000 250000\n1 1 failed 0 1700000000 300000\n0 2 1800 0 1700000001 5\n")
    latencies, finished = pgbench_log([str(log)])
    assert latencies == [2500, 1800]
    assert finished == [pytest.approx(1700000000.25), pytest.approx(1700000001.000005)]


# --- the minimal ledger under pgbench ----------------------------------------------------------


@pytest.fixture
def minimal_ledger(transactional_db: None):  # type: ignore[no-untyped-def]
    """The minimal ledger's tables in the test database (pgbench needs them committed), dropped after."""
    with connection.cursor() as cursor:
        for statement in sql.CREATE_MINIMAL:
            cursor.execute(statement)
    yield connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_min_entry, bench_min_balance")


def run_pgbench(dbname: str, tmp_path: Path, scripts: list[str], transactions: int, clients: int) -> None:
    if shutil.which("pgbench") is None:
        pytest.skip("pgbench is not installed (Debian: postgresql-contrib)")
    settings = connection.settings_dict
    command = ["pgbench", "-h", settings["HOST"], "-p", str(settings["PORT"] or 5432), "-U", settings["USER"]]
    command += ["-n", "-M", "prepared", "-c", str(clients), "-t", str(transactions)]
    for index, script in enumerate(scripts):
        path = tmp_path / f"s{index}.sql"
        path.write_text(script)
        command += ["-f", str(path)]
    done = subprocess.run([*command, dbname], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"number of transactions actually processed: {transactions * clients}/" in done.stdout


def minimal_state() -> tuple[dict[int, Decimal], list[tuple]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, amount FROM bench_min_balance")
        amounts = dict(cursor.fetchall())
        cursor.execute(
            "SELECT balance, type, amount, balance_after, counterpart, created_at FROM bench_min_entry ORDER BY id"
        )
        entries = cursor.fetchall()
    return amounts, entries


def test_minimal_random_transfers_move_money_between_two_different_balances_in_range(
    minimal_ledger: str, tmp_path: Path
) -> None:
    run_pgbench(minimal_ledger, tmp_path, [sql.minimal_transfer_random(5)], transactions=60, clients=4)
    amounts, entries = minimal_state()
    opening = Decimal(sql.MINIMAL_OPENING)
    assert len(amounts) == sql.MINIMAL_BALANCES
    assert sum(amounts.values()) == opening * sql.MINIMAL_BALANCES  # money is conserved
    assert {balance for balance, amount in amounts.items() if amount != opening} <= set(range(1, 6))
    assert len(entries) == 2 * 240
    outs = [entry for entry in entries if entry[1] == "TRANSFER_OUT"]
    ins = [entry for entry in entries if entry[1] == "TRANSFER_IN"]
    assert len(outs) == len(ins) == 240
    assert all(entry[0] != entry[4] and 1 <= entry[0] <= 5 and 1 <= entry[4] <= 5 for entry in entries)
    assert len({(entry[0], entry[4]) for entry in outs}) > 10  # both directions of many pairs, not one
    # Each balance's entries, in the order they were written, chain to its amount.
    for balance, amount in amounts.items():
        own = [entry for entry in entries if entry[0] == balance]
        running = opening
        for _, kind, moved, after, _, _ in own:
            running += moved if kind == "TRANSFER_IN" else -moved
            assert after == running
        assert running == amount


def test_minimal_hot_pair_moves_both_ways_between_its_two_balances(minimal_ledger: str, tmp_path: Path) -> None:
    low, high = sql.MINIMAL_HOT_PAIR
    scripts = [sql.minimal_transfer_between(low, high), sql.minimal_transfer_between(high, low)]
    run_pgbench(minimal_ledger, tmp_path, scripts, transactions=50, clients=4)
    amounts, entries = minimal_state()
    assert amounts[low] + amounts[high] == 2 * Decimal(sql.MINIMAL_OPENING)
    assert {(entry[0], entry[4]) for entry in entries} == {(low, high), (high, low)}
    assert len(entries) == 2 * 200


def test_the_minimal_ledger_refuses_a_balance_below_zero(minimal_ledger: str) -> None:
    with pytest.raises(Exception, match="bench_min_balance_amount_check"), connection.cursor() as cursor:
        cursor.execute("UPDATE bench_min_balance SET amount = amount - 1000000.01 WHERE id = 3")


def test_minimal_random_transfers_need_two_balances_of_the_table() -> None:
    with pytest.raises(ValueError):
        sql.minimal_transfer_random(1)
    with pytest.raises(ValueError):
        sql.minimal_transfer_random(sql.MINIMAL_BALANCES + 1)


# --- the batch scenario's balances -------------------------------------------------------------


def test_payers_hold_four_fifths_of_the_batch_balances_and_the_others_the_rest() -> None:
    users = [f"user{index}" for index in range(10)]
    owners = batch_owners(users, 1_000)  # type: ignore[arg-type]
    counts = {user: owners.count(user) for user in users}
    assert [counts[user] for user in users[:BATCH_PAYERS]] == [200] * BATCH_PAYERS
    assert sum(counts[user] for user in users[BATCH_PAYERS:]) == 200
    assert min(counts[user] for user in users[BATCH_PAYERS:]) >= 33
    assert batch_owners(users[:2], 10) == [users[0], users[1]] * 5  # no others: the payers hold them all


@pytest.mark.django_db(transaction=True)
def test_bulk_balances_are_left_as_a_deposit_through_the_api_leaves_them() -> None:
    owners = [UserFactory(), UserFactory()]
    owner_ids = [str(owners[index % 2].pk) for index in range(7)]
    with psycopg.connect(**_psycopg_params()) as conn:
        balance_ids = bulk_balances(conn, owner_ids, "250.00")
        conn.commit()

    balances = WalletBalance.objects.filter(pk__in=balance_ids).select_related("wallet")
    assert len(balances) == 7
    for balance in balances:
        assert balance.amount == Decimal("250.00") and balance.last_sequence == 1 and balance.held_amount == 0
        assert balance.currency_id == "USD"
        assert str(balance.wallet.owner_id) == owner_ids[balance_ids.index(str(balance.pk))]
    entries = Transaction.objects.filter(wallet_balance_id__in=balance_ids)
    assert {(entry.type, entry.amount, entry.sequence) for entry in entries} == {
        (TransactionType.DEPOSIT, Decimal("250.00"), 1)
    }
    assert_balance_chains([UUID(balance_id) for balance_id in balance_ids])
    # The ledger's guards are back on: an entry that breaks the chain is refused again.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'transactions_transaction'::regclass "
            "AND NOT tgisinternal AND tgenabled <> 'O'"
        )
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_the_batch_check_passes_a_ledger_moved_by_the_service_and_catches_a_forged_entry() -> None:
    owners = [UserFactory(), UserFactory()]
    with psycopg.connect(**_psycopg_params()) as conn:
        balance_ids = bulk_balances(conn, [str(owners[index % 2].pk) for index in range(4)], BATCH_OPENING)
        conn.commit()
    for source, destination in ((0, 1), (1, 2), (3, 0), (0, 1)):
        transfer_create(
            from_wallet_balance_id=UUID(balance_ids[source]),
            to_wallet_balance_id=UUID(balance_ids[destination]),
            amount=Decimal("0.01"),
            owner=owners[source % 2],
            created_by=owners[source % 2],
        )
    dbname = connection.settings_dict["NAME"]
    checked = batch_invariants(dbname, balance_ids)
    assert checked["holds"] is True
    assert checked["entries_checked"] == 4 + 2 * 4

    # An entry written past the ledger's guards, as a careless bulk insert could: 5.00 from nowhere.
    balance = WalletBalance.objects.select_related("wallet").get(pk=balance_ids[2])
    with psycopg.connect(**_psycopg_params()) as conn:
        conn.execute("ALTER TABLE transactions_transaction DISABLE TRIGGER USER")
        conn.execute(
            "INSERT INTO transactions_transaction (id, type, amount, balance_after, sequence, reference, source,"
            " description, merchant, created_at, currency_id, owner_id, wallet_id, wallet_balance_id)"
            " VALUES (gen_random_uuid(), 'DEPOSIT', 5, %s, %s, gen_random_uuid(), 'SEED', '', '', now(), 'USD',"
            " %s, %s, %s)",
            (balance.amount + 4, balance.last_sequence + 1, balance.wallet.owner_id, balance.wallet_id, balance.pk),
        )
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        conn.execute("ALTER TABLE transactions_transaction ENABLE TRIGGER USER")
        conn.commit()
    broken = batch_invariants(dbname, balance_ids)
    assert broken["holds"] is False
    assert broken["entries_out_of_chain"] == 1  # 4 more, not 5
    assert broken["balances_off_their_newest_entry"] == 1  # the balance never moved on to it
    assert broken["transfers_unpaired"] == 0 and broken["money_created_or_lost"] == "0.0000"


def _psycopg_params() -> dict:
    settings = connection.settings_dict
    return {
        "host": settings["HOST"],
        "port": settings["PORT"] or 5432,
        "user": settings["USER"],
        "dbname": settings["NAME"],
        "autocommit": False,
    }


class _BatchCatcher(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies: list[tuple[str, dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append((self.headers["Authorization"], json.loads(body)))
        self.send_response(HTTPStatus.CREATED)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_each_batch_moves_money_out_of_one_payers_balances_to_any_batch_balance(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    payers = [{"token": f"token-{n}", "balances": [f"p{n}-{k}" for k in range(30)]} for n in range(BATCH_PAYERS)]
    everyone = [balance for payer in payers for balance in payer["balances"]] + [f"other-{k}" for k in range(30)]
    script = tmp_path / "batch.lua"
    script.write_text(lua.render("batch", {"size": 100, "payers": payers, "balances": everyone}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BatchCatcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = subprocess.run(
            ["wrk", "-t1", "-c2", "-d1s", "-s", str(script), f"http://127.0.0.1:{server.server_port}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert len(_BatchCatcher.bodies) >= 5
    owned = {f"Bearer {payer['token']}": set(payer["balances"]) for payer in payers}
    destinations = set()
    for authorization, body in _BatchCatcher.bodies:
        movements = body["movements"]
        assert len(movements) == 100
        for movement in movements:
            assert movement["type"] == "transfer" and movement["amount"] == "0.01"
            assert movement["from_wallet_balance_id"] in owned[authorization]
            assert movement["to_wallet_balance_id"] != movement["from_wallet_balance_id"]
            destinations.add(movement["to_wallet_balance_id"])
    assert destinations - set(payers[0]["balances"]) and any(d.startswith("other-") for d in destinations)


# --- the targets ---------------------------------------------------------------------------------


def _point(rps: float, tps: float, minimal_tps: float, pg_http: float, pg_minimal: float) -> dict:
    return {
        "http": {"ok_transfers_per_s": rps, "latency_ms": {"p99": 30.0}, "errors": 0, "pg_cpu_ms_per_op": pg_http},
        "sql": {"tps": tps, "latency_ms": {"p99": 20.0}},
        "minimal": {"tps": minimal_tps, "pg_cpu_ms_per_op": pg_minimal},
        "ratio": round(rps / tps, 3),
        "minimal_ratio": round(rps / minimal_tps, 3),
        "pg_cpu_minimal_ratio": round(pg_minimal / pg_http, 3),
    }


def _verdicts(results: dict) -> dict[str, str]:
    from argparse import Namespace

    return {row["target"]: row["verdict"] for row in target_rows(results, Namespace(connections=16))}


def test_targets_against_the_minimal_ledger_are_judged_beside_the_existing_ones() -> None:
    results = {
        "options": {"batch_size": 100, "batch_connections": 8, "batch_balances": 10_000},
        "scenarios": {
            "cold": {"16": _point(600, 1700, 3600, 0.7, 0.45)},  # minimal ÷ HTTP by PG CPU 0.643
            "hot": {"16": _point(560, 850, 1200, 0.65, 0.3)},
        },
        "batch": {
            "size": 100,
            "connections": 8,
            "minimal_connections": 16,
            "balances": 10_000,
            "minimal_ratio": 1.3,
            "pg_cpu_minimal_ratio": 0.9,
            "http": {"errors": 0, "latency_ms": {"p99": 300.0}},
            "invariants": {
                "entries_out_of_chain": 0,
                "balances_off_their_newest_entry": 0,
                "transfers_unpaired": 0,
                "money_created_or_lost": "0.0000",
            },
        },
    }
    verdicts = _verdicts(results)
    assert verdicts["cold transfers HTTP ÷ raw SQL (16 conn.)"] == "PASS"
    assert verdicts["hot pair HTTP ÷ raw SQL same pair (16 conn.)"] == "PASS"
    assert verdicts["p99 cold transfers (16 conn.)"] == "PASS"
    assert verdicts["cold transfers HTTP ÷ minimal raw SQL (16 conn.)"] == "FAIL"  # 0.167 < 0.2
    assert verdicts["hot pair HTTP ÷ minimal raw SQL on one pair (16 conn.)"] == "PASS"  # 0.467
    assert verdicts["PostgreSQL CPU per cold transfer: minimal raw SQL ÷ HTTP (16 conn.)"] == "FAIL"
    batches = "batches of 100 transfers over 10,000 balances (8 conn.): transfers/s ÷ minimal raw SQL single transfers"
    assert verdicts[f"{batches} (16 conn.)"] == "PASS"
    assert verdicts["(stretch) the same ratio"] == "not met"
    assert verdicts["the same batches: p99 per batch (8 conn.)"] == "FAIL"
    assert verdicts["errors at 16 connections (all scenarios; the batches at 8)"] == "PASS"
    ledger = "the batch balances' ledger after the batches: entries, balances and transfers wrong (`batch_invariants`)"
    assert verdicts[ledger] == "PASS"
    results["batch"]["invariants"]["money_created_or_lost"] = "0.0100"
    assert _verdicts(results)[ledger] == "FAIL"


def test_batch_targets_say_why_they_did_not_run() -> None:
    results = {
        "scenarios": {},
        "batch": {"not_run": "no batch endpoint: POST /api/v1/transactions/batch/ answered 404"},
    }
    batch_verdicts = {
        name: verdict for name, verdict in _verdicts(results).items() if "batch" in name or name.startswith("(stretch)")
    }
    assert len(batch_verdicts) == 5
    assert set(batch_verdicts.values()) == {
        "NOT RUN (no batch endpoint: POST /api/v1/transactions/batch/ answered 404)"
    }
