"""Where PostgreSQL spends a money movement: its backend sampled by perf while this process moves money.

    python -m bench.pgprofile [--kind transfer|batch] [--count N] [--database wallet_bench] [--top 40]

Needs a bench database that a run kept (`python -m bench.run --quick --scenarios cold,batch --sweep ""
--keep-db --no-docs`) and `perf` (Debian: linux-perf). It samples `cpu-clock`, a software event, so it works
in virtual machines without hardware counters. The movements go through the services in this process (no
HTTP, no gunicorn): transfers of 0.01 between random USD balances of the cold set, or batches of 100
transfers out of one payer's balances to any of the batch set, as the bench's scenarios do. It prints the
backend's CPU per movement (perf's samples, at 5,000 a second) and, for the functions that take the most,
the share of the samples whose stack holds them ("inclusive"): `ExecInsertIndexTuples` is index
maintenance, `ExecBRInsertTriggers`/`AfterTriggerEndQuery` the row and statement triggers,
`AfterTriggerFireDeferred` the deferred ones at commit, `ExecConstraints` the CHECKs (their expressions are
read from the catalog's text once per statement: `stringToNode`), `standard_ExecutorStart` plan start-up.

Shares from one run are comparable with each other whatever the machine is doing; the CPU per movement
moves with the machine's speed (compare two versions in alternating runs). Not part of `make bench`.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

SAMPLES_PER_SECOND = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=["transfer", "batch"], default="transfer")
    parser.add_argument("--count", type=int, help="movements to sample (1,500 transfers or 40 batches)")
    parser.add_argument("--database", default="wallet_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--top", type=int, default=40, help="functions to print")
    args = parser.parse_args()
    if "DJANGO_SETTINGS_MODULE" not in os.environ:  # the bench's own production settings, then start again
        from bench.run import service_env

        env = service_env(database=args.database, redis_url=args.redis_url, cache_prefix="pgprofile")
        os.execve(sys.executable, [sys.executable, "-m", "bench.pgprofile", *sys.argv[1:]], env)
    count = args.count or (1500 if args.kind == "transfer" else 40)
    samples = profile(args.kind, count)
    report(samples, count, args.kind, args.top)


def profile(kind: str, count: int) -> list[list[str]]:
    import django

    django.setup()
    from django.db import connection

    move = _transfers() if kind == "transfer" else _batches()
    for _ in range(3 if kind == "batch" else 50):  # plans, caches and connection warm
        move()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "perf.data"
        pid = str(connection.connection.info.backend_pid)
        command = ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(SAMPLES_PER_SECOND), "-g", "-p", pid]
        perf = subprocess.Popen([*command, "-o", str(data)], stderr=subprocess.DEVNULL)
        time.sleep(1)  # perf attached
        for _ in range(count):
            move()
        perf.send_signal(signal.SIGINT)
        perf.wait()
        script = subprocess.run(
            ["perf", "script", "-i", str(data), "-F", "ip,sym"], capture_output=True, text=True, check=True
        )
    return _stacks(script.stdout)


def _transfers():  # type: ignore[no-untyped-def]
    from accounts.models import User
    from transactions.services import transfer_create
    from wallets.models import WalletBalance

    balances = list(
        WalletBalance.objects.exclude(wallet__name__startswith="batch ")
        .filter(currency_id="USD", amount__gt=100)
        .values_list("id", "wallet__owner_id")
    )
    users = {user.pk: user for user in User.objects.all()}

    def move() -> None:
        (source, owner), (destination, _) = random.sample(balances, 2)
        actor = users[owner]
        transfer_create(
            from_wallet_balance_id=source,
            to_wallet_balance_id=destination,
            amount=Decimal("0.01"),
            owner=actor,
            created_by=actor,
        )

    return move


def _batches():  # type: ignore[no-untyped-def]
    from accounts.models import User
    from transactions.batches.services import batch_create
    from wallets.models import WalletBalance

    held: dict = collections.defaultdict(list)
    for balance, owner in WalletBalance.objects.filter(wallet__name__startswith="batch ").values_list(
        "id", "wallet__owner_id"
    ):
        held[owner].append(balance)
    if not held:
        raise SystemExit("no batch balances: keep a bench database that ran the batch scenario")
    payers = sorted(held, key=lambda owner: -len(held[owner]))[:4]
    everyone = [balance for balances in held.values() for balance in balances]
    users = {user.pk: user for user in User.objects.filter(pk__in=payers)}
    turn = iter(range(1 << 62))

    def move() -> None:
        payer = payers[next(turn) % len(payers)]
        own = set(held[payer])
        movements = []
        for _ in range(100):
            destination = random.choice(everyone)
            while destination in own:
                destination = random.choice(everyone)
            movements.append(
                {
                    "type": "transfer",
                    "from_wallet_balance_id": random.choice(held[payer]),
                    "to_wallet_balance_id": destination,
                    "amount": Decimal("0.01"),
                }
            )
        batch_create(movements=movements, owner=users[payer], created_by=users[payer])

    return move


def _stacks(text: str) -> list[list[str]]:
    """perf script's samples, each the list of its frames' function names, innermost first."""
    samples: list[list[str]] = []
    frames: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            if frames:
                samples.append(frames)
                frames = []
            continue
        symbol = line.split(None, 1)[-1]
        frames.append(re.sub(r"\+0x[0-9a-f]+$", "", symbol))
    if frames:
        samples.append(frames)
    return samples


def report(samples: list[list[str]], count: int, kind: str, top: int) -> None:
    inclusive: collections.Counter[str] = collections.Counter()
    for frames in samples:
        inclusive.update({frame for frame in frames if not frame.startswith(("[unknown]", "0x"))})
    per_movement = len(samples) / SAMPLES_PER_SECOND / count * 1000
    print(f"{kind}: {count} sampled, PostgreSQL's backend {per_movement:.3f} ms of CPU per {kind}")
    for name, hits in inclusive.most_common(top):
        print(f"{hits / len(samples):7.1%}  {name}")


if __name__ == "__main__":
    main()
