"""The garbage collector's policy in a gunicorn worker (wallet_project/gc_tuning.py, gunicorn.conf.py)."""

from __future__ import annotations

import gc
import runpy
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from wallet_project import gc_tuning

CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


class Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def manual_gc() -> Iterator[None]:
    """No automatic collection during the test, and nothing left frozen after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def promoted_garbage() -> weakref.ref:
    """A cycle that a young collection saw alive (so it was promoted), then dropped."""
    gc.collect()  # the generation counters start from zero
    node = Node()
    gc.collect(0)  # what a request's allocations set off while the node is still in use
    ref = weakref.ref(node)
    del node
    return ref


def test_before_request_frees_a_promoted_cycle_before_it_grows_old(manual_gc: None) -> None:
    ref = promoted_garbage()
    assert gc.get_count()[1] == 1, "the young collection is counted"
    assert ref() is not None, "a promoted cycle is not freed by reference counting"

    gc_tuning.before_request()

    assert ref() is None
    assert gc.get_count()[1] == 0


def test_before_request_does_nothing_when_no_young_collection_ran(manual_gc: None) -> None:
    gc.collect()
    node = Node()
    ref = weakref.ref(node)
    del node
    assert gc.get_count()[1] == 0

    gc_tuning.before_request()

    assert ref() is not None, "nothing was collected: requests that allocate little pay nothing"
    gc.collect(0)
    assert ref() is None, "the cycle was in the youngest generation, for its own collection"


def test_after_start_freezes_start_ups_objects_and_leaves_the_oldest_generation_empty(manual_gc: None) -> None:
    survivor = Node()
    garbage = weakref.ref(Node())

    gc_tuning.after_start()

    assert garbage() is None, "start-up's garbage is collected, not frozen"
    assert gc.get_freeze_count() > 0
    assert not any(obj is survivor for obj in gc.get_objects(generation=2)), "frozen, out of the collector's sight"
    assert len(gc.get_objects(generation=2)) == 0


def test_gunicorn_calls_both_hooks(manual_gc: None) -> None:
    conf = runpy.run_path(str(CONF))

    conf["post_worker_init"](None)
    assert gc.get_freeze_count() > 0

    # The last request's cycles are collected as the next one starts, when the worker no longer holds the
    # last response (gc_tuning's docstring); gunicorn's own pre_request line is still logged.
    ref = promoted_garbage()
    logged: list[tuple] = []
    worker = SimpleNamespace(log=SimpleNamespace(debug=lambda *args: logged.append(args)))
    conf["pre_request"](worker, SimpleNamespace(method="GET", path="/health/"))
    assert ref() is None
    assert logged == [("%s %s", "GET", "/health/")]
    assert "post_request" not in conf, "a collection there would promote the response's request, still held"
