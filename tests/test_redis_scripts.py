"""Lua scripts on a connection of the thread's own (`wallet_project.redis_scripts`): the locks' and the throttle's."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from django.conf import settings

from tests.live import private_redis
from wallet_project.redis_scripts import DirectScript, ScriptRunner

ECHO = "return {KEYS[1], ARGV[1]}"


@pytest.fixture
def client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def _unique(source: str) -> str:
    """A script Redis cannot know yet (its SHA is new), whatever ran on the server before."""
    return f"-- {uuid.uuid4()}\n{source}"


def test_a_script_redis_does_not_know_is_loaded_and_called(client):
    runner = ScriptRunner(client)
    script = DirectScript(runner, _unique(ECHO))
    assert client.script_exists(script.sha) == [False]

    assert script(keys=["k"], args=[7]) == [b"k", b"7"]
    assert client.script_exists(script.sha) == [True]
    assert script(keys=["again"], args=["x"]) == [b"again", b"x"]
    runner.close()


def test_each_thread_has_its_own_connection_on_the_clients_database(client):
    runner = ScriptRunner(client)
    script = DirectScript(runner, ECHO)
    ports: dict[str, int] = {}

    def call(name: str) -> None:
        assert script(keys=[name], args=[1]) == [name.encode(), b"1"]
        connection = runner.connection()
        ports[name] = connection._sock.getsockname()[1]  # this thread's own socket
        assert connection.db == client.connection_pool.connection_kwargs.get("db", 0)
        runner.close()

    threads = [threading.Thread(target=call, args=(f"t{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(ports.values())) == 3
    script(keys=["main"], args=[1])
    connection = runner.connection()
    script(keys=["main"], args=[2])
    assert runner.connection() is connection  # kept from one call to the next
    runner.close()


def test_after_a_fork_the_child_does_not_use_the_parents_connection(client, monkeypatch):
    runner = ScriptRunner(client)
    parent = runner.connection()
    monkeypatch.setattr("os.getpid", lambda: -1)  # what a forked child sees: another pid

    assert runner.connection() is not parent
    parent.disconnect()


@pytest.mark.slow
def test_a_call_that_fails_raises_at_once_and_the_next_one_reconnects():
    with private_redis() as server:
        client = redis.Redis.from_url(server.url(0), socket_timeout=0.5, socket_connect_timeout=0.5)
        runner = ScriptRunner(client)
        script = DirectScript(runner, ECHO)
        assert script(keys=["a"], args=[1]) == [b"a", b"1"]

        server.pause()  # up, but answers nothing: only the socket timeout ends the wait
        try:
            with pytest.raises(redis.TimeoutError):
                script(keys=["b"], args=[2])
        finally:
            server.resume()
        # The late answer to the timed-out call is never read as this call's.
        assert script(keys=["c"], args=[3]) == [b"c", b"3"]

        server.stop()
        with pytest.raises(redis.ConnectionError):
            script(keys=["d"], args=[4])
        server.start()
        assert script(keys=["e"], args=[5]) == [b"e", b"5"]  # and loaded again on the new server

        # A restart while the connection is idle is noticed before the next call, which succeeds.
        server.stop()
        server.start()
        assert script(keys=["f"], args=[6]) == [b"f", b"6"]
        runner.close()
        client.close()
