"""Instructions per request, counted by valgrind: the steady measure for one code change.

    .venv/bin/python -m bench.instructions              # transfer, deposit, history page
    .venv/bin/python -m bench.instructions --kinds transfer --requests 100

CPU time of a request, in process or over HTTP, moves by ±10 % from one run to
the next on a shared machine; a change worth 3 % cannot be seen that way.
valgrind's callgrind counts the instructions the Python process executes, and
gives the same count again to a few hundredths of a percent. For each kind of
request this calls the WSGI application as gunicorn does (Django's handler
and request signals, every middleware, the view) twice under callgrind, with N and 3N requests after the
same warm-up, and reports (count(3N) − count(N)) / 2N: the instructions of one
request, with start-up and warm-up taken out. It counts our process only, not
PostgreSQL, Redis or the kernel; `make bench` remains the judge of throughput.

It (re)creates the database `wallet_bench_instructions` and uses Redis
database 6 (its own keys only). Needs `valgrind` (Debian: apt-get install -y
valgrind). About half a minute per kind.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "wallet_bench_instructions"
KINDS = ("transfer", "deposit", "history")


def _env() -> dict[str, str]:
    from bench.run import service_env

    return service_env(
        database=DATABASE,
        redis_url="redis://127.0.0.1:6379/6",
        cache_prefix="walletinstr",
        LOG_LEVEL="INFO",  # the access and audit lines are part of a request's cost
        PYTHONHASHSEED="0",
    )


def _setup() -> dict[str, str]:
    """A fresh database with two users and a funded balance each; their ids and a token (in a child)."""
    from bench.run import recreate_database

    recreate_database(DATABASE)
    env = _env()
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "--child-seed"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def _child_seed() -> None:
    import django

    django.setup()
    from decimal import Decimal

    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from wallets.models import Currency, WalletBalance
    from wallets.services import balance_create, wallet_create

    usd = Currency.objects.get(pk="USD")
    ids = []
    users = []
    for label in ("a", "b"):
        user = User.objects.create_user(email=f"{label}@instructions.example.com", password=None, name=label)
        wallet = wallet_create(owner=user, name="main")
        balance = balance_create(
            wallet_id=wallet.pk, owner=user, currency=usd.code, initial_amount=Decimal(10**9), created_by=user
        )
        assert isinstance(balance, WalletBalance)
        ids.append(str(balance.pk))
        users.append(user)
    print(json.dumps({"src": ids[0], "dst": ids[1], "token": str(AccessToken.for_user(users[0]))}))


def _child_run(kind: str, count: int, seed: dict[str, str]) -> None:
    import io

    import django

    django.setup()
    from wallet_project.wsgi import application

    def environ(method: str, path: str, body: bytes = b"") -> dict:
        """What gunicorn hands the WSGI application for this request."""
        return {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {seed['token']}",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json" if body else "",
            "CONTENT_LENGTH": str(len(body)) if body else "",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }

    if kind == "transfer":
        transfer = {"from_wallet_balance_id": seed["src"], "to_wallet_balance_id": seed["dst"], "amount": "0.01"}
        body = json.dumps(transfer)
        request = ("POST", "/api/v1/transactions/transfer/", body.encode())
    elif kind == "deposit":
        body = json.dumps({"wallet_balance_id": seed["src"], "amount": "0.01"})
        request = ("POST", "/api/v1/transactions/deposit/", body.encode())
    else:
        request = ("GET", "/api/v1/transactions/", b"")

    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        statuses.append(status)

    for _ in range(20 + count):
        # As gunicorn does: call, read the body, close (which sends request_finished).
        answer = application(environ(*request), start_response)
        b"".join(answer)
        answer.close()
        if not statuses[-1].startswith("2"):
            raise SystemExit(f"{kind} answered {statuses[-1]}")


def _count(kind: str, count: int, seed: dict[str, str]) -> int:
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    cmd += ["-W", "ignore", "-m", "bench.instructions", "--child-run", kind, str(count), json.dumps(seed)]
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"valgrind failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma list of {', '.join(KINDS)}")
    parser.add_argument("--requests", type=int, default=50, help="N: the runs make N and 3N requests")
    parser.add_argument("--child-seed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-run", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_seed:
        _child_seed()
        return 0
    if args.child_run:
        kind, count, seed = args.child_run
        _child_run(kind, int(count), json.loads(seed))
        return 0
    if shutil.which("valgrind") is None:
        print("bench.instructions: valgrind is missing (Debian: apt-get install -y valgrind)", file=sys.stderr)
        return 2
    seed = _setup()
    for kind in args.kinds.split(","):
        small, large = _count(kind, args.requests, seed), _count(kind, 3 * args.requests, seed)
        print(f"{kind:10} {(large - small) / (2 * args.requests) / 1e6:7.3f} M instructions per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
