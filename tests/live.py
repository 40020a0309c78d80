"""Helpers for the tests that run the service for real: gunicorn, a private Redis, raw HTTP and raw SQL.

These tests go through the same doors as production traffic (a gunicorn
process, TCP, PostgreSQL and Redis), so that outages can be caused for real:
a Redis server stopped and started again, a database backend terminated, a
worker process killed. Everything started here is stopped in a `finally`.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import redis
from django.conf import settings
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- the database the tests use -------------------------------------------------------------


def database_url_of_tests() -> str:
    """pytest-django's test database as a DATABASE_URL, for processes started by a test.

    Only meaningful inside a `django_db(transaction=True)` test: what the test
    writes is committed, so other processes see it.
    """
    db = connection.settings_dict
    credentials = quote(db["USER"] or "")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"])
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}{port}/{quote(db['NAME'])}"


def sql_connection(*, autocommit: bool = True) -> psycopg.Connection:
    """A psycopg connection of our own to the test database, outside Django's."""
    db = connection.settings_dict
    return psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        autocommit=autocommit,
    )


@contextmanager
def row_lock_held(table: str, row_id: Any) -> Iterator[psycopg.Connection]:
    """Hold `SELECT ... FOR UPDATE` on one row in a transaction of another connection until the block ends."""
    holder = sql_connection(autocommit=False)
    try:
        holder.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [row_id])
        yield holder
    finally:
        holder.rollback()
        holder.close()


def backends_blocked_by(holder: psycopg.Connection) -> list[int]:
    """The backend pids waiting, directly or behind another waiter, on a lock that `holder`'s transaction holds.

    The second waiter for a row waits on the first waiter (who holds the tuple
    lock), not on the holder, so the wait graph is followed transitively.
    """
    with sql_connection() as observer:
        rows = observer.execute(
            "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
        ).fetchall()
    blocked: set[int] = set()
    frontier = {holder.info.backend_pid}
    while frontier:
        frontier = {pid for pid, blockers in rows if pid not in blocked and frontier & set(blockers)}
        blocked |= frontier
    return sorted(blocked)


def backend_alive(pid: int) -> bool:
    with sql_connection() as observer:
        return observer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is not None


def terminate_backend(pid: int) -> None:
    with sql_connection() as observer:
        observer.execute("SELECT pg_terminate_backend(%s)", [pid])


# --- tokens and HTTP --------------------------------------------------------------------------


def access_token(user: Any) -> str:
    return str(RefreshToken.for_user(user).access_token)


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    elapsed: float

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None


@dataclass
class Http:
    """A tiny JSON client for a live server (the test client of DRF only talks to in-process Django)."""

    port: int
    host: str = "127.0.0.1"
    timeout: float = 30.0

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = {"Accept": "application/json", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        if token:
            sent["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        started = time.perf_counter()
        try:
            conn.request(method, path, body=payload, headers=sent)
            response = conn.getresponse()
            raw = response.read()
            elapsed = time.perf_counter() - started
            try:
                parsed: Any = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return Reply(response.status, parsed, {k.lower(): v for k, v in response.getheaders()}, elapsed)
        finally:
            conn.close()

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)


# --- a private Redis server -------------------------------------------------------------------


@dataclass
class RedisServer:
    """A redis-server of our own on a spare port, which a test may stop and start again.

    Never the shared server on 6379: other suites use it at the same time.
    """

    port: int
    process: subprocess.Popen | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="redis-", suffix=".log")[1]))

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        assert self.process is None, "already running"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    tempfile.gettempdir(),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        try:
            wait_until(lambda: self._pings(client), timeout=10, what=f"redis-server on port {self.port}")
        finally:
            client.close()

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            if client.connection_pool:
                client.connection_pool.disconnect()
            return False

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it still accepts connections but answers nothing, like a hung Redis."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server at once, the way a crash or a network cut looks to its clients."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.log.unlink(missing_ok=True)


# --- a live gunicorn --------------------------------------------------------------------------


def service_environment(**overrides: str) -> dict[str, str]:
    """The environment of a service process: this test run's settings, pointed at the test database."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "wallet_project.settings",
            "DATABASE_URL": database_url_of_tests(),
            "REDIS_URL": settings.REDIS_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "THROTTLE_ANON_RATE": "1000000/minute",
            "THROTTLE_USER_RATE": "1000000/minute",
            "THROTTLE_LOGIN_RATE": "1000000/minute",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


@dataclass
class LiveServer:
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def http(self) -> Http:
        return Http(self.port)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _start_gunicorn(workers: int, env: dict[str, str]) -> LiveServer:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [
                GUNICORN,
                "wallet_project.wsgi:application",
                "--config",
                str(BASE_DIR / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--timeout",
                "60",
            ],
            cwd=BASE_DIR,
            env=service_environment(**env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return LiveServer(port=port, process=process, log=log)


def _healthy(server: LiveServer) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"gunicorn exited with {server.process.returncode}:\n{server.output()}")
    try:
        return server.http.get("/health/").status == 200
    except OSError:
        return False


@contextmanager
def live_gunicorns(count: int, *, workers: int = 2, **env: str) -> Iterator[list[LiveServer]]:
    """`count` gunicorn instances on spare ports, started together, all ready when the block starts."""
    servers: list[LiveServer] = []
    try:
        for _ in range(count):
            servers.append(_start_gunicorn(workers, env))
        wait_until(lambda: all(_healthy(server) for server in servers), timeout=30, interval=0.1, what="/health/")
        yield servers
    finally:
        stop_process_groups([server.process for server in servers])
        for server in servers:
            server.log.unlink(missing_ok=True)


@contextmanager
def live_gunicorn(*, workers: int = 2, **env: str) -> Iterator[LiveServer]:
    """A gunicorn serving the service on a spare port, ready (its /health/ answers) when the block starts."""
    with live_gunicorns(1, workers=workers, **env) as (server,):
        yield server


def stop_process_group(process: subprocess.Popen, *, grace: float = 5.0) -> None:
    stop_process_groups([process], grace=grace)


def stop_process_groups(processes: list[subprocess.Popen], *, grace: float = 5.0) -> None:
    """SIGTERM these processes and their children (each started in its own session), SIGKILL what lingers.

    A gunicorn master exits only after its workers, so a master that is gone
    leaves nothing behind; a group is signalled only while its leader is ours
    (not yet reaped), so that a reused pid is never hit.
    """
    running = [process for process in processes if process.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
