"""In-process measurement of single requests, run by bench.run in a subprocess against the bench database.

    python -m bench.inprocess ARGS.json  → one JSON object on stdout

For each request kind (transfer, deposit, balance read, history page) it counts,
through Django's test client (the whole middleware and DRF stack, no HTTP
server): the SQL statements (`CaptureQueriesContext`; BEGIN, COMMIT, SAVEPOINT
and RELEASE are counted apart, as the statement budgets do), the Redis round
trips and commands (redis-py's connection patched to count), and the time spent
waiting on PostgreSQL and on Redis. Then it profiles a batch of transfers with
pyinstrument, if it is installed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from contextlib import contextmanager

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet_project.settings")

import django

django.setup()

import redis.client  # noqa: E402
import redis.connection  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)\b", re.I)


class RedisCounter:
    def __init__(self) -> None:
        self.round_trips = 0
        self.commands: list[str] = []
        self.seconds = 0.0
        self.active = False

    def install(self) -> None:
        counter = self
        cls = redis.connection.AbstractConnection
        original_send_packed = cls.send_packed_command
        original_send_command = cls.send_command
        original_read = cls.read_response

        def send_packed_command(conn, command, check_health=True):  # type: ignore[no-untyped-def]
            if counter.active:
                counter.round_trips += 1
            started = time.perf_counter()
            try:
                return original_send_packed(conn, command, check_health)
            finally:
                if counter.active:
                    counter.seconds += time.perf_counter() - started

        def send_command(conn, *args, **kwargs):  # type: ignore[no-untyped-def]
            if counter.active and args:
                name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
                counter.commands.append(name.upper())
            return original_send_command(conn, *args, **kwargs)

        def read_response(conn, *args, **kwargs):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return original_read(conn, *args, **kwargs)
            finally:
                if counter.active:
                    counter.seconds += time.perf_counter() - started

        original_pipeline_execute = redis.client.Pipeline.execute

        def pipeline_execute(pipe, *args, **kwargs):  # type: ignore[no-untyped-def]
            if counter.active:
                names = [str(c[0][0]).upper() for c in pipe.command_stack]
                counter.commands.append("PIPELINE[" + " ".join(names) + "]")
            return original_pipeline_execute(pipe, *args, **kwargs)

        redis.client.Pipeline.execute = pipeline_execute  # type: ignore[method-assign]
        cls.send_packed_command = send_packed_command  # type: ignore[method-assign]
        cls.send_command = send_command  # type: ignore[method-assign]
        cls.read_response = read_response  # type: ignore[method-assign]

    @contextmanager
    def counting(self):  # type: ignore[no-untyped-def]
        self.round_trips, self.commands, self.seconds, self.active = 0, [], 0.0, True
        try:
            yield self
        finally:
            self.active = False


class DbTimer:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def measure(client: Client, redis_counter: RedisCounter, method: str, path: str, body: dict | None) -> dict:
    timer = DbTimer()
    with (
        CaptureQueriesContext(connection) as queries,
        redis_counter.counting() as rc,
        connection.execute_wrapper(timer),
    ):
        started = time.perf_counter()
        if method == "POST":
            response = client.post(path, data=json.dumps(body), content_type="application/json")
        else:
            response = client.get(path)
        elapsed = time.perf_counter() - started
    statements = [q["sql"] for q in queries.captured_queries]
    budget = [sql for sql in statements if not TX_CONTROL.match(sql)]
    return {
        "status": response.status_code,
        "sql_statements": len(budget),
        "sql_statements_with_tx_control": len(statements),
        "statements": [sql if len(sql) < 300 else sql[:297] + "..." for sql in budget],
        "redis_round_trips": rc.round_trips,
        "redis_commands": rc.commands,
        "wall_ms": round(elapsed * 1000, 3),
        "db_ms": round(timer.seconds * 1000, 3),
        "redis_ms": round(rc.seconds * 1000, 3),
    }


def main() -> None:
    with open(sys.argv[1]) as handle:
        args = json.load(handle)
    redis_counter = RedisCounter()
    redis_counter.install()
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {args['token']}")
    src, dst = args["src"], args["dst"]
    transfer_body = {"from_wallet_balance_id": src, "to_wallet_balance_id": dst, "amount": "0.01"}
    requests = {
        "transfer": ("POST", "/api/v1/transactions/transfer/", transfer_body),
        "deposit": ("POST", "/api/v1/transactions/deposit/", {"wallet_balance_id": src, "amount": "0.01"}),
        "balance": ("GET", f"/api/v1/balances/{src}/", None),
        "history": ("GET", f"/api/v1/transactions/?wallet_balance_id={src}", None),
    }
    out: dict = {"requests": {}}
    for name, (method, path, body) in requests.items():
        for _ in range(3):  # warm up: first-request imports, connections, caches
            measure(client, redis_counter, method, path, body)
        samples = [measure(client, redis_counter, method, path, body) for _ in range(5)]
        result = samples[-1]
        for key in ("wall_ms", "db_ms", "redis_ms"):
            values = sorted(sample[key] for sample in samples)
            result[key] = values[len(values) // 2]  # median of five
        out["requests"][name] = result

    # The profile: many transfers, so the sampling profiler sees more than noise.
    runs = int(args.get("profile_requests", 200))
    try:
        from pyinstrument import Profiler
    except ImportError:
        out["profile"] = None
    else:
        profiler = Profiler(interval=0.0002)
        started = time.perf_counter()
        profiler.start()
        for _ in range(runs):
            client.post(
                "/api/v1/transactions/transfer/", data=json.dumps(transfer_body), content_type="application/json"
            )
        profiler.stop()
        elapsed = time.perf_counter() - started
        out["profile"] = {
            "requests": runs,
            "ms_per_request": round(elapsed * 1000 / runs, 3),
            "text": profiler.output_text(
                unicode=False, color=False, show_all=False, processor_options={"filter_threshold": 0.02}
            ),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
