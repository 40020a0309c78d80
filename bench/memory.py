"""Each web worker's VmRSS after each kind of request the bench sends, in about two minutes.

    python -m bench.memory                          # database wallet_bench_memory, Redis db 6, 10 s per kind
    python -m bench.memory --database wallet_mine --redis-url redis://127.0.0.1:6379/9 --seconds 5

The bench's target is the largest worker's VmRSS after any point (docs/PERFORMANCE.md, "Worker memory"); a
full run takes 35 minutes. This starts gunicorn as `bench.run` does (gunicorn.conf.py, the serving virtualenv,
`service_env`), seeds through the API what the bench seeds (users, balances, a hot pair, a loyalty programme, the
batches' 10,000 balances), then loads the workers with wrk and the bench's own Lua scripts, one kind after the
other, and reads every worker's VmRSS (and its anonymous part) after each: what a kind adds is what it leaves.

The database is created if missing and never dropped: each run adds its own users and balances. Redis: the
balance-lock keys and the run's own cache keys are deleted from the given database afterwards, as `bench.run`
does, so it must be one of its own (not 0).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import lua
from bench import run as bench

CACHE_PREFIX = "walletmemory"
# (name, Lua script, connections): the bench's scenarios, in its order. `history` pages the hot user's entries:
# thousands once `hot` has run.
KINDS = [
    ("cold", "cold", 16),
    ("hot", "hot", 16),
    ("deposit", "deposit", 16),
    ("mixed", "mixed", 16),
    ("history", "history", 16),
    ("loyalty", "payment", 16),
    ("batch", "batch", 8),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="wallet_bench_memory", help="created if missing, never dropped")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--seconds", type=int, default=10, help="of wrk per kind")
    parser.add_argument("--kinds", default=",".join(name for name, _, _ in KINDS))
    parser.add_argument("--serve-python", default=None, help="as bench.run's (default: .venv-bench-serve)")
    parser.add_argument("--json", help="also write the readings to this file")
    args = parser.parse_args(argv)
    if not re.search(r"/([1-9]\d*)$", args.redis_url.rstrip("/")):
        parser.error("--redis-url must name a Redis database of its own, not 0: its balance-lock keys are deleted")
    args.kinds = [kind for kind in args.kinds.split(",") if kind]
    unknown = set(args.kinds) - {name for name, _, _ in KINDS}
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    return args


def ensure_database(args: argparse.Namespace, env: dict[str, str]) -> None:
    with bench.pg_connect("postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.database,)).fetchone():
            conn.execute(f'CREATE DATABASE "{args.database}"')
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=bench.ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{migrate.stderr[-3000:]}")


def seed(api: bench.Api, dbname: str) -> tuple[dict[str, dict], str]:
    """The Lua data of each kind, and the loyalty programme's id (switched off)."""
    users = [bench.make_user(api, f"memory{index}") for index in range(25)]
    hot = bench.make_user(api, "memory-hot")
    for index in range(100):
        bench.make_balance(api, users[index % len(users)], f"w{index}", "1000000.00")
    for index in range(2):
        bench.make_balance(api, hot, f"hot{index}", "1000000.00")
    program = bench.seed_loyalty(api, dbname)
    owners = bench.batch_owners(users, 10_000)
    with bench.pg_connect(dbname, autocommit=False) as conn:
        balances = bench.bulk_balances(conn, [owner.id for owner in owners], bench.BATCH_OPENING)
        conn.commit()
    held: dict[str, list[str]] = {}
    for owner, balance in zip(owners, balances, strict=True):
        held.setdefault(owner.id, []).append(balance)
    cold = {"balances": [bench.entry(balance, user.token) for user in users for balance in user.balances]}
    payers = [{"token": user.token, "balances": held[user.id]} for user in users[: bench.BATCH_PAYERS]]
    data = {
        "cold": cold,
        "hot": {"pair": [bench.entry(balance, hot.token) for balance in hot.balances]},
        "deposit": cold,
        "mixed": cold,
        "history": {"path": "/api/v1/transactions/", "token": hot.token},
        "loyalty": cold,
        "batch": {"size": 100, "payers": payers, "balances": balances},
    }
    return data, program


def readings(server: bench.Gunicorn) -> list[dict[str, float]]:
    """VmRSS and RssAnon of each worker, in MB."""
    found = []
    for pid in server.worker_pids():
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        found.append({key: int(status[key].split()[0]) / 1024 for key in ("VmRSS", "RssAnon")})
    return found


def booted(server: bench.Gunicorn) -> list[dict[str, float]]:
    """The workers' readings once they have stopped growing: a worker still loading the application is not."""
    last: list[dict[str, float]] = []
    for _ in range(50):
        now = readings(server)
        if last and [r["VmRSS"] for r in now] == [r["VmRSS"] for r in last]:
            return now
        last = now
        time.sleep(0.5)
    return last


def load(
    server: bench.Gunicorn, workdir: Path, kind: str, script: str, data: dict, connections: int, seconds: int
) -> str:
    path = workdir / f"{kind}.lua"
    path.write_text(lua.render(script, data))
    cmd = ["wrk", "-t1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s", "-s", str(path), server.base]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    match = re.search(r"^BENCH_JSON (.*)$", done.stdout, re.M)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}\n{server.tail()}")
    raw = json.loads(match.group(1))
    errors = sum(raw["codes"].values()) + sum(raw["socket_errors"].values())
    return f"{raw['requests']} requests" + (f", {errors} errors {raw['codes']}" if errors else "")


def line(label: str, found: list[dict[str, float]], note: str = "") -> str:
    workers = " | ".join(f"{r['VmRSS']:5.1f} ({r['RssAnon']:5.1f} anon)" for r in found)
    return f"{label:14} {workers}  {note}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = bench.service_env(
        database=args.database, redis_url=args.redis_url, cache_prefix=CACHE_PREFIX, GUNICORN_LOG_LEVEL="warning"
    )
    ensure_database(args, env)
    workdir = Path(tempfile.mkdtemp(prefix="wallet-memory-"))
    server = bench.Gunicorn(env, workdir, None, bench.serving_python(args.serve_python))
    results = []
    try:
        server.start()
        print("MB per worker: VmRSS (of which anonymous)", flush=True)
        results.append(("booted", booted(server)))
        print(line(*results[-1]), flush=True)
        data, program = seed(bench.Api(server.base), args.database)
        results.append(("seeded", readings(server)))
        print(line(*results[-1], "registrations, tokens, wallets, balances"), flush=True)
        for kind, script, connections in KINDS:
            if kind not in args.kinds:
                continue
            bench.set_programme(args.database, program, kind == "loyalty")  # payments earn cashback then only
            try:
                note = load(server, workdir, kind, script, data[kind], connections, args.seconds)
            finally:
                bench.set_programme(args.database, program, False)
            results.append((kind, readings(server)))
            print(line(*results[-1], note), flush=True)
    finally:
        server.stop()
        bench.redis_cleanup(args.redis_url, CACHE_PREFIX)
        shutil.rmtree(workdir, ignore_errors=True)
    largest = max(r["VmRSS"] for _, found in results for r in found)
    print(f"largest worker VmRSS: {largest:.1f} MB (the bench's target: at most 80)")
    if args.json:
        Path(args.json).write_text(json.dumps([{"after": label, "workers": found} for label, found in results]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
