"""A PostgreSQL primary and a streaming replica of our own, in a temporary directory, on spare loopback ports.

Made the way an operator makes them: `initdb` with `wal_level = replica`,
then `pg_basebackup -R` (which writes the replica's `primary_conninfo` and
`standby.signal`) and `pg_ctl start`. The servers run as the `postgres` OS
user when the tests run as root (CI does), since PostgreSQL refuses to run as
root. Never the shared server on 5432: these are stopped and started by the
tests. `replication_cluster()` stops both and deletes the directory whatever
happens.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.live import free_port, wait_until

TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
DATABASE = "wallet"


def postgres_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl, pg_basebackup and postgres of one version (Debian's first)."""

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name)) or (0,)

    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True):
        if all((bindir / tool).is_file() for tool in TOOLS):
            return bindir
    found = [shutil.which(tool) for tool in TOOLS]
    if all(found):
        return Path(os.path.realpath(found[0])).parent  # type: ignore[arg-type]
    return None


def why_not_runnable() -> str | None:
    """Why a cluster cannot be made here, or None."""
    if postgres_bindir() is None:
        return "PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup, postgres) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root, and runuser (util-linux) is missing"
    return None


def require_programs() -> None:
    """Skip the calling test when a cluster cannot be made here; fail instead in CI, where .ci/run installs them."""
    why_not = why_not_runnable()
    if why_not:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"The read-replica tests must run in CI: {why_not}")
        pytest.skip(why_not)


@dataclass
class PgServer:
    """One PostgreSQL server of the cluster: its data directory, port and log."""

    name: str
    data_dir: Path
    port: int
    bindir: Path
    run_as: list[str]

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def url(self, database: str = DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [*self.run_as, str(self.bindir / tool), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise AssertionError(f"{tool} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    def connect(self, database: str = DATABASE) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True, connect_timeout=5
        )

    def query(self, sql: str, params: Any = (), database: str = DATABASE) -> list[tuple]:
        """The rows of one statement (none for a statement that returns none)."""
        with self.connect(database) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []


@dataclass
class Replication:
    root: Path
    primary: PgServer
    replica: PgServer

    def pause_replay(self) -> None:
        self.replica.query("SELECT pg_wal_replay_pause()")
        wait_until(
            lambda: self.replica.query("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused",
            timeout=10,
            what="the replica's replay to pause",
        )

    def resume_replay(self) -> None:
        self.replica.query("SELECT pg_wal_replay_resume()")

    def caught_up(self) -> bool:
        """Whether the replica has replayed everything the primary has written so far."""
        (written,) = self.primary.query("SELECT pg_current_wal_lsn()")[0]
        (behind,) = self.replica.query("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", [written])[0]
        return behind <= 0

    def wait_caught_up(self, timeout: float = 30) -> None:
        wait_until(self.caught_up, timeout=timeout, interval=0.05, what="the replica to catch up")

    def replica_lag(self) -> float | None:
        """The lag as the service measures it (wallet_project.replicas.monitor.LAG_SQL)."""
        from wallet_project.replicas.monitor import LAG_SQL

        in_recovery, lag = self.replica.query(LAG_SQL)[0]
        assert in_recovery
        return None if lag is None else float(lag)


def _primary_settings(port: int, socket_dir: Path) -> str:
    return f"""
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
wal_level = replica
max_wal_senders = 5
max_connections = 60
shared_buffers = 32MB
# A test cluster: durability is not the point, speed is.
fsync = off
full_page_writes = off
# No background transaction moves the time of the last replayed commit under a test that measures the lag.
autovacuum = off
"""


@contextmanager
def replication_cluster() -> Iterator[Replication]:
    """A primary with the database `wallet` and a streaming replica of it, both running, stopped afterwards."""
    bindir = postgres_bindir()
    assert bindir is not None, why_not_runnable()
    root = Path(tempfile.mkdtemp(prefix="wallet-replication-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    primary = PgServer("primary", root / "primary", free_port(), bindir, run_as)
    replica = PgServer("replica", root / "replica", free_port(), bindir, run_as)
    try:
        primary.run("initdb", "-D", str(primary.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N")
        with (primary.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(_primary_settings(primary.port, root))
        primary.start()
        primary.query(f"CREATE DATABASE {DATABASE}", database="postgres")
        primary.run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(replica.data_dir), "-R", "-X", "stream", "-c", "fast"),
        )
        with (replica.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {replica.port}\n")
        replica.start()
        cluster = Replication(root, primary, replica)
        cluster.wait_caught_up()
        yield cluster
    finally:
        for server in (replica, primary):
            if server.running():
                try:
                    server.stop("immediate")
                except (AssertionError, subprocess.TimeoutExpired):
                    _kill_postmaster(server)
        shutil.rmtree(root, ignore_errors=True)


def _kill_postmaster(server: PgServer) -> None:
    """Last resort: SIGKILL the postmaster this cluster started (its pid is the first line of postmaster.pid)."""
    try:
        pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
