"""A Redis primary, a replica and three sentinels of the test's own, on spare loopback ports.

Never the shared Redis on 6379. The sentinels notice a dead primary within
`DOWN_AFTER_MILLISECONDS` and promote the replica soon after; everything
runs from one temporary directory and is killed when the block ends.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.live import free_port, wait_until
from tests.programs import program

MASTER_NAME = "wallet"
DOWN_AFTER_MILLISECONDS = 1000
FAILOVER_TIMEOUT_MILLISECONDS = 3000
SENTINELS = 3
QUORUM = 2


@dataclass
class Process:
    name: str
    port: int
    process: subprocess.Popen

    def client(self, **options: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, socket_timeout=2, **options)

    def kill(self) -> None:
        """SIGKILL: what a crash of the machine looks like to the clients (no goodbye, the port closed)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@dataclass
class SentinelSetup:
    primary: Process
    replica: Process
    sentinels: list[Process]
    directory: Path
    spares: list[Process] = field(default_factory=list)

    @property
    def addresses(self) -> str:
        """The sentinels as REDIS_SENTINELS lists them."""
        return ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)

    def master_port(self) -> int | None:
        """The primary's port as a sentinel names it now (None while the sentinel knows none that is up)."""
        for sentinel in self.sentinels:
            client = sentinel.client()
            try:
                state = client.sentinel_master(MASTER_NAME)
            except redis.RedisError:
                continue
            finally:
                client.close()
            if state["is_master"] and not state["is_sdown"] and not state["is_odown"]:
                return int(state["port"])
        return None

    def start_spare(self) -> Process:
        """Another redis-server, monitored by nobody (a primary for a test to point a server at)."""
        spare = _redis_server(self.directory, "spare")
        self.spares.append(spare)
        return spare


def _start(directory: Path, name: str, port: int, command: list[str]) -> Process:
    log = (directory / f"{name}.log").open("ab")
    with log:
        process = subprocess.Popen(command, cwd=directory, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Process(name, port, process)


def _pings(node: Process) -> bool:
    if node.process.poll() is not None:
        raise AssertionError(f"{node.name} exited with {node.process.returncode}")
    client = node.client()
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _redis_server(directory: Path, name: str, *arguments: str) -> Process:
    port = free_port()
    node = _start(
        directory,
        name,
        port,
        [
            program("redis-server", package="redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--dbfilename",
            f"{name}.rdb",
            *arguments,
        ],
    )
    wait_until(lambda: _pings(node), timeout=10, what=f"{name} on port {port}")
    return node


def _sentinel(directory: Path, name: str, primary_port: int) -> Process:
    port = free_port()
    config = directory / f"{name}.conf"  # a sentinel rewrites its file as it learns: one each
    config.write_text(
        "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                f"dir {directory}",
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} {QUORUM}",
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MILLISECONDS}",
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MILLISECONDS}",
                f"sentinel parallel-syncs {MASTER_NAME} 1",
            ]
        )
        + "\n"
    )
    node = _start(directory, name, port, [program("redis-sentinel", package="redis-sentinel"), str(config)])
    wait_until(lambda: _pings(node), timeout=10, what=f"{name} on port {port}")
    return node


def _replication_up(replica: Process) -> bool:
    client = replica.client()
    try:
        return client.info("replication").get("master_link_status") == "up"
    finally:
        client.close()


def _sees_everyone(sentinel: Process) -> bool:
    client = sentinel.client()
    try:
        state = client.sentinel_master(MASTER_NAME)
    finally:
        client.close()
    return state["num-slaves"] == 1 and state["num-other-sentinels"] == SENTINELS - 1


@contextmanager
def sentinel_setup() -> Iterator[SentinelSetup]:
    """A primary, its replica (in sync) and three sentinels that each see both and one another."""
    program("redis-server", package="redis-server")
    program("redis-sentinel", package="redis-sentinel")
    directory = Path(tempfile.mkdtemp(prefix="redis-sentinel-"))
    started: list[Process] = []
    try:
        primary = _redis_server(directory, "primary")
        started.append(primary)
        replica = _redis_server(directory, "replica", "--replicaof", "127.0.0.1", str(primary.port))
        started.append(replica)
        wait_until(lambda: _replication_up(replica), timeout=10, what="the replica to sync")
        sentinels = []
        for index in range(SENTINELS):
            sentinels.append(_sentinel(directory, f"sentinel-{index}", primary.port))
            started.append(sentinels[-1])
        # Sentinels find one another through the primary's hello channel, every two seconds.
        wait_until(lambda: all(_sees_everyone(s) for s in sentinels), timeout=20, interval=0.2, what="the sentinels")
        setup = SentinelSetup(primary, replica, sentinels, directory)
        try:
            yield setup
        finally:
            started.extend(setup.spares)
    finally:
        for node in started:
            node.kill()
        shutil.rmtree(directory, ignore_errors=True)
