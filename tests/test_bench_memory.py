"""bench.memory's own checks: it deletes Redis keys, so never in database 0; it reads each worker's memory."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from bench import memory


def test_it_refuses_redis_database_zero_and_unknown_kinds() -> None:
    with pytest.raises(SystemExit):
        memory.parse_args(["--redis-url", "redis://127.0.0.1:6379/0"])
    with pytest.raises(SystemExit):
        memory.parse_args(["--redis-url", "redis://127.0.0.1:6379"])
    with pytest.raises(SystemExit):
        memory.parse_args(["--kinds", "cold,statements"])
    assert memory.parse_args(["--kinds", "cold,batch"]).kinds == ["cold", "batch"]


def test_it_reads_each_workers_resident_and_anonymous_memory() -> None:
    server = SimpleNamespace(worker_pids=lambda: [os.getpid()])

    (found,) = memory.readings(server)  # type: ignore[arg-type]

    assert 0 < found["RssAnon"] <= found["VmRSS"]
