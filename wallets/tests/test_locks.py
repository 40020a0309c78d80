"""The per-balance Redis locks: tried together in sorted order, never held out of order, released together."""

import threading
import time

import pytest
import redis
from django.conf import settings
from rest_framework.exceptions import Throttled

from tests.live import private_redis
from wallet_project.throttling import Admission, UserThrottle
from wallets import locks

A, B = "wallet:balance:00000000-0000-0000-0000-00000000000a", "wallet:balance:00000000-0000-0000-0000-00000000000b"


@pytest.fixture
def backend():
    backend = locks.get_backend()
    assert isinstance(backend, locks.RedisLocks)
    return backend


@pytest.fixture
def raw():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def _take_in_background(backend, names):
    """Start acquire_all(names) in a thread; returns the thread and where its locks will be."""
    outcome = {}

    def take():
        outcome["held"] = backend.acquire_all(names, time.monotonic() + 5)

    taker = threading.Thread(target=take)
    taker.start()
    time.sleep(0.3)  # long enough for its first attempt and the start of its wait
    return taker, outcome


def _finish(taker, outcome, backend):
    taker.join(timeout=5)
    assert not taker.is_alive()
    backend.release_all(outcome["held"])


def test_uncontended_locks_are_taken_and_released_together(backend, raw):
    held = backend.acquire_all([A, B], time.monotonic() + 5)

    assert [lock._name for lock in held] == [f"lock:{A}", f"lock:{B}"]
    assert raw.exists(f"lock:{A}", f"lock:{B}") == 2
    backend.release_all(held)
    assert raw.exists(f"lock:{A}", f"lock:{B}") == 0


def test_a_lock_after_a_busy_one_is_not_held_while_waiting(backend, raw):
    """Holding B while waiting for A would be holding out of order: A→B and B→A could deadlock."""
    blocker = backend.acquire(A, time.monotonic() + 5)
    taker, outcome = _take_in_background(backend, [A, B])

    assert raw.get(f"lock:{B}") is None  # the taker waits for A holding nothing
    backend.release(blocker)
    taker.join(timeout=5)
    assert raw.exists(f"lock:{A}", f"lock:{B}") == 2
    _finish(taker, outcome, backend)


def test_the_prefix_taken_is_kept_while_waiting_for_the_rest(backend, raw):
    blocker = backend.acquire(B, time.monotonic() + 5)
    taker, outcome = _take_in_background(backend, [A, B])

    assert raw.get(f"lock:{A}") is not None  # A, first in order, is held while waiting for B
    backend.release(blocker)
    _finish(taker, outcome, backend)
    assert raw.exists(f"lock:{A}", f"lock:{B}") == 0


def test_a_wait_that_runs_out_gives_back_what_it_took(backend, raw):
    blocker = backend.acquire(B, time.monotonic() + 5)

    with pytest.raises(locks.LockTimeout):
        backend.acquire_all([A, B], time.monotonic() + 0.3)

    assert raw.get(f"lock:{A}") is None
    backend.release(blocker)


def test_a_woken_waiter_takes_all_it_still_needs_in_one_round_trip(backend, raw, monkeypatch):
    """One script call before the wait; the wait and the next try go together, in one pipeline.

    Redis runs the try as soon as the release wakes the wait, before the
    waiter's process has even read the signal: the lock is handed on within
    Redis. No lock is asked for on its own.
    """
    raw.delete(f"lock-signal:{A}", f"lock-signal:{B}")  # no stale wake-up from an earlier release
    blocker = backend.acquire_all([A, B], time.monotonic() + 5)
    scripts = {backend.acquire_prefix.sha: "acquire", backend.release_many.sha: "release"}
    calls = []

    def name(args):
        return scripts.get(args[1], args[1]) if args[0] == "EVALSHA" else args[0]

    send_command = redis.connection.AbstractConnection.send_command
    execute = redis.client.Pipeline.execute

    def counted(connection, *args, **kwargs):
        if args[0] not in ("HELLO", "CLIENT", "SELECT"):  # not a new connection's handshake
            calls.append(name(args))
        return send_command(connection, *args, **kwargs)

    def counted_pipeline(pipe, *args, **kwargs):
        calls.append(tuple(name(command) for command, _ in pipe.command_stack))
        return execute(pipe, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", counted)
    monkeypatch.setattr(redis.client.Pipeline, "execute", counted_pipeline)
    taker, outcome = _take_in_background(backend, [A, B])
    backend.release_all(blocker)
    taker.join(timeout=5)

    assert [lock._name for lock in outcome["held"]] == [f"lock:{A}", f"lock:{B}"]
    # The taker's try, its wait with the next try (one round trip), the blocker's release that ends the wait.
    assert calls == ["acquire", ("BLPOP", "acquire"), "release"]
    _finish(taker, outcome, backend)


def test_a_waiter_whose_script_redis_lost_loads_it_and_still_takes_the_lock():
    """Redis restarted or flushed its scripts while a waiter waited: its try after the wake-up is loaded again."""
    with private_redis() as server:
        backend = locks.RedisLocks(server.url(0))
        raw = redis.Redis.from_url(server.url(0))
        blocker = backend.acquire_all([A], time.monotonic() + 5)
        taker, outcome = _take_in_background(backend, [A])

        raw.script_flush()  # the waiter's try is already queued behind its BLPOP, as an EVALSHA
        backend.release_all(blocker)  # loads the release script again, and wakes the waiter
        taker.join(timeout=5)

        assert [lock._name for lock in outcome["held"]] == [f"lock:{A}"]
        assert raw.get(f"lock:{A}") is not None
        _finish(taker, outcome, backend)
        assert raw.get(f"lock:{A}") is None
        raw.close()


def test_a_lock_that_expired_under_its_holder_is_not_released_by_it(backend, raw, caplog):
    """The release script, like the library's, only deletes a lock that is still ours."""
    held = backend.acquire_all([A, B], time.monotonic() + 5)
    raw.set(f"lock:{A}", "someone-else")  # ours expired and another took it

    backend.release_all(held)

    assert raw.get(f"lock:{A}") == b"someone-else"
    assert raw.get(f"lock:{B}") is None
    assert "balance lock expired before release" in caplog.text
    raw.delete(f"lock:{A}")


# --- a throttle's count made with the locks (wallet_project.throttling.Admission) -----------------

GATE = "wallettest:throttle:gate"


@pytest.fixture
def admission(raw):
    """An admission of a limit of 2 on a fresh counter, whose throttle says to come back in 42 s."""
    raw.delete(GATE)
    throttle = UserThrottle()
    throttle.wait_seconds = 42
    yield Admission(throttle, GATE, limit=2, ttl=60)
    raw.delete(GATE)


def test_an_admission_is_counted_by_the_acquire_once(backend, raw, admission):
    held = backend.acquire_all([A, B], time.monotonic() + 5, admission)

    assert admission.counted
    assert int(raw.get(GATE)) == 1
    assert 0 < raw.ttl(GATE) <= 60
    assert raw.exists(f"lock:{A}", f"lock:{B}") == 2
    backend.release_all(held)
    backend.release_all(backend.acquire_all([A, B], time.monotonic() + 5, admission))  # already counted
    assert int(raw.get(GATE)) == 1


def test_an_admission_over_its_limit_is_refused_holding_nothing(backend, raw, admission):
    raw.set(GATE, 2)

    with pytest.raises(Throttled) as refused:
        backend.acquire_all([A, B], time.monotonic() + 5, admission)

    assert refused.value.wait == 42
    assert int(raw.get(GATE)) == 3, "a refused request counts, as with DRF's own check"
    assert raw.exists(f"lock:{A}", f"lock:{B}") == 0


def test_an_admission_is_counted_once_by_a_movement_that_waits(backend, raw, admission):
    blocker = backend.acquire(A, time.monotonic() + 5)
    outcome = {}

    def take():
        outcome["held"] = backend.acquire_all([A, B], time.monotonic() + 5, admission)

    taker = threading.Thread(target=take)
    taker.start()
    time.sleep(0.3)  # its first attempt counted and found A busy; it waits
    assert int(raw.get(GATE)) == 1
    backend.release(blocker)
    _finish(taker, outcome, backend)
    assert int(raw.get(GATE)) == 1


def test_the_admission_script_is_loaded_again_if_redis_lost_it(admission):
    with private_redis() as server:
        backend = locks.RedisLocks(server.url(0))
        raw = redis.Redis.from_url(server.url(0))
        raw.script_flush()

        backend.release_all(backend.acquire_all([A, B], time.monotonic() + 5, admission))

        assert int(raw.get(GATE)) == 1
        raw.close()
