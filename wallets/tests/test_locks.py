"""The per-balance Redis locks: all tried at once, kept only in sorted order, released at once."""

import threading
import time

import pytest
import redis
from django.conf import settings

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


def test_a_lock_taken_after_a_busy_one_is_given_back_while_waiting(backend, raw):
    """Holding B while waiting for A would be holding out of order: A→B and B→A could deadlock."""
    blocker = backend.acquire(A, time.monotonic() + 5)
    taker, outcome = _take_in_background(backend, [A, B])

    assert raw.get(f"lock:{B}") is None  # B was given back; the taker waits for A holding nothing
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
    """One pipeline before the wait and one after the wake-up; no lock is asked for on its own."""
    raw.delete(f"lock-signal:{A}", f"lock-signal:{B}")  # no stale wake-up from an earlier release
    blocker = backend.acquire_all([A, B], time.monotonic() + 5)
    round_trips = []
    pipeline, single_set = backend.client.pipeline, backend.client.set

    def counted_pipeline(*args, **kwargs):
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        def counted_execute(*a, **kw):
            round_trips.append([str(command[0][0]) for command in pipe.command_stack])
            return execute(*a, **kw)

        pipe.execute = counted_execute
        return pipe

    def counted_set(*args, **kwargs):
        round_trips.append(["SET"])
        return single_set(*args, **kwargs)

    monkeypatch.setattr(backend.client, "pipeline", counted_pipeline)
    monkeypatch.setattr(backend.client, "set", counted_set)
    taker, outcome = _take_in_background(backend, [A, B])
    backend.release_all(blocker)
    taker.join(timeout=5)

    assert [lock._name for lock in outcome["held"]] == [f"lock:{A}", f"lock:{B}"]
    # The taker's try, the blocker's release (it wakes the taker), the taker's second try.
    assert round_trips == [["SET", "SET"], ["EVALSHA", "EVALSHA"], ["SET", "SET"]]
    _finish(taker, outcome, backend)
