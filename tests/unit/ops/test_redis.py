import threading

import pytest
import redis

from stethoscope.ops.redis import LuaScript, ThreadConnections, redis_client
from tests.support.services import RedisServer


@pytest.fixture
def client(redis_url):
    client = redis_client(redis_url, timeout_ms=100)
    yield client
    client.close()


def test_a_thread_keeps_its_own_connection(client):
    connections = ThreadConnections(client)
    mine = connections.execute("CLIENT", "ID")
    assert connections.execute("CLIENT", "ID") == mine
    theirs = []
    thread = threading.Thread(
        target=lambda: theirs.append(connections.execute("CLIENT", "ID"))
    )
    thread.start()
    thread.join()
    assert theirs and theirs[0] != mine
    connections.close()


def test_connections_take_the_clients_settings(client):
    connections = ThreadConnections(client)
    assert connections.execute("SET", "k", "v", "NX", "PX", 1000, "GET") is None
    assert connections.execute("SET", "k", "w", "NX", "PX", 1000, "GET") == b"v"
    connection = connections._local.connection
    assert connection.socket_timeout == client.get_connection_kwargs()["socket_timeout"]
    connections.close()


def test_a_reply_too_late_is_never_read_as_the_next_ones(client):
    connections = ThreadConnections(client)
    # The server answers BLPOP after 0.3 s, past the client's 0.1-s timeout.
    with pytest.raises(redis.TimeoutError):
        connections.execute("BLPOP", "empty-list", 0.3)
    # The late nil must not be taken for the answer to this GET.
    client.set("answer", "42")
    assert connections.execute("GET", "answer") == b"42"
    connections.close()


def test_an_error_reply_keeps_the_connection(client):
    connections = ThreadConnections(client)
    connection_id = connections.execute("CLIENT", "ID")
    with pytest.raises(redis.ResponseError):
        connections.execute("NOT-A-COMMAND")
    assert connections.execute("CLIENT", "ID") == connection_id
    connections.close()


def test_close_disconnects_and_a_later_command_connects_again(client):
    connections = ThreadConnections(client)
    first = connections.execute("CLIENT", "ID")
    connections.close()
    listed = client.client_list()
    assert first not in {int(entry["id"]) for entry in listed}
    assert connections.execute("CLIENT", "ID") != first
    connections.close()


def test_a_script_is_loaded_again_after_redis_forgot_it(client):
    connections = ThreadConnections(client)
    script = LuaScript("return redis.call('INCR', KEYS[1]) + tonumber(ARGV[1])")
    assert script(connections, keys=["n"], args=[10]) == 11
    client.script_flush()
    assert not client.script_exists(script.sha)[0]
    assert script(connections, keys=["n"], args=[10]) == 12
    assert client.script_exists(script.sha)[0]  # EVAL cached it again
    assert script(connections, keys=["n"], args=[10]) == 13
    connections.close()


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, to stop and start, and a thread
    connection to it that has served a command."""
    server = RedisServer(tmp_path).start()
    client = redis_client(server.url, timeout_ms=250)
    connections = ThreadConnections(client)
    connections.execute("PING")
    yield server, client, connections
    connections.close()
    client.close()
    server.stop()


def test_a_redis_restart_costs_no_command(own_redis):
    server, client, connections = own_redis
    server.stop()
    server.start()
    # The thread's connection was closed by the restart: the command is sent
    # again on a new one instead of failing.
    assert connections.execute("SET", "k", "v", "NX", "GET") is None
    assert client.get("k") == b"v"


def test_redis_away_fails_every_command_without_hanging(own_redis):
    server, _, connections = own_redis
    server.stop()
    for _ in range(3):
        with pytest.raises(redis.ConnectionError):
            connections.execute("PING")
    server.start()
    assert connections.execute("PING") == b"PONG"
