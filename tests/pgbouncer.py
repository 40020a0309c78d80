"""A pgbouncer of the test's own, in transaction pooling, in front of the test database.

It runs from a temporary directory on a spare loopback port, trusts the
local clients (as the test PostgreSQL does) and is stopped when the block
ends. `django_through` points Django's default database at it, with what
`DB_TRANSACTION_POOLING` makes of the settings, for every thread that opens
a connection meanwhile, and puts the direct connection back afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg
from django.db import connection, connections

from tests.live import free_port, wait_until
from tests.programs import program
from wallet_project.settings import database_from_url

# Protocol-level prepared statements are kept per client from PgBouncer 1.21 on, when
# `max_prepared_statements` is above 0.
PREPARED_STATEMENTS_SINCE = (1, 21)


@dataclass
class PgBouncer:
    port: int
    process: subprocess.Popen
    directory: Path
    database: str
    user: str
    version: tuple[int, ...]

    def connect(self, **options: Any) -> psycopg.Connection:
        """A psycopg connection of our own to the test database through the pooler."""
        return psycopg.connect(host="127.0.0.1", port=self.port, dbname=self.database, user=self.user, **options)

    def show(self, what: str) -> list[dict[str, Any]]:
        """`SHOW <what>` on the admin console, as dicts (the console speaks the simple query protocol only)."""
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            dbname="pgbouncer",
            user=self.user,
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,
        ) as admin:
            cursor = admin.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def totals(self) -> dict[str, int]:
        """The test database's `SHOW STATS` counters: transactions and queries pgbouncer has passed on."""
        rows = [row for row in self.show("STATS") if row["database"] == self.database]
        if not rows:  # listed once a client has used it
            return {"transactions": 0, "queries": 0}
        (row,) = rows
        return {"transactions": int(row["total_xact_count"]), "queries": int(row["total_query_count"])}

    def output(self) -> str:
        return (self.directory / "pgbouncer.log").read_text(errors="replace")[-4000:]


def _version(executable: str) -> tuple[int, ...]:
    first_line = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", first_line)
    assert found, f"cannot read pgbouncer's version from {first_line!r}"
    return tuple(int(part) for part in found.groups() if part is not None)


@contextmanager
def running_pgbouncer(*, pool_size: int) -> Iterator[PgBouncer]:
    """pgbouncer in transaction pooling in front of the test database, at most `pool_size` server
    connections, and no prepared statements kept for its clients (what PgBouncer before 1.21 offers)."""
    executable = program("pgbouncer", package="pgbouncer")
    version = _version(executable)
    target = connection.settings_dict
    database, user = target["NAME"], target["USER"] or "postgres"
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    settings = [
        "[databases]",
        f"{database} = host={target['HOST'] or '127.0.0.1'} port={target['PORT'] or 5432} dbname={database}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {directory / 'users.txt'}",
        f"admin_users = {user}",
        "pool_mode = transaction",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 200",
    ]
    if version >= PREPARED_STATEMENTS_SINCE:
        settings.append("max_prepared_statements = 0")
    (directory / "pgbouncer.ini").write_text("\n".join(settings) + "\n")
    (directory / "users.txt").write_text(f'"{user}" ""\n')
    command = [executable, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root; it reads its files as this user
        command[1:1] = ["-u", "nobody"]
        for path in (directory, *directory.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
    with (directory / "pgbouncer.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    bouncer = PgBouncer(port, process, directory, database, user, version)
    try:
        wait_until(lambda: _answers(bouncer), timeout=10, interval=0.05, what=f"pgbouncer on port {port}")
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()


def _answers(bouncer: PgBouncer) -> bool:
    if bouncer.process.poll() is not None:
        raise AssertionError(f"pgbouncer exited with {bouncer.process.returncode}:\n{bouncer.output()}")
    try:
        return bool(bouncer.show("VERSION"))
    except psycopg.OperationalError:
        return False


def pooled_database_settings(bouncer: PgBouncer, **environment: str) -> dict[str, Any]:
    """What the settings make of a DATABASE_URL that names `bouncer`, with DB_TRANSACTION_POOLING on."""
    url = f"postgres://{bouncer.user}@127.0.0.1:{bouncer.port}/{bouncer.database}"
    with mock.patch.dict(os.environ, {"DB_TRANSACTION_POOLING": "true", **environment}):
        if "DB_PREPARED_STATEMENTS" not in environment:
            os.environ.pop("DB_PREPARED_STATEMENTS", None)
        return database_from_url(url)


@contextmanager
def django_through(bouncer: PgBouncer) -> Iterator[None]:
    """Django's default database reached through `bouncer` by every connection opened in the block (every
    thread's), configured as `DB_TRANSACTION_POOLING=true` configures it; the direct one again afterwards."""
    pooled = pooled_database_settings(bouncer)
    # Django builds each thread's connection from this one dict, which the running connection shares.
    shared = connections.settings["default"]
    assert connection.settings_dict is shared
    saved = dict(shared)
    connection.close()
    shared.update(
        HOST=pooled["HOST"],
        PORT=pooled["PORT"],
        OPTIONS=pooled["OPTIONS"],
        DISABLE_SERVER_SIDE_CURSORS=pooled["DISABLE_SERVER_SIDE_CURSORS"],
    )
    try:
        yield
    finally:
        connection.close()
        shared.clear()
        shared.update(saved)
