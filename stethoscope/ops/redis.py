"""Redis clients that fail fast: every Redis user falls back when it is away."""

import hashlib
import threading
import weakref

import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry


def redis_client(url: str, timeout_ms: int) -> redis.Redis:
    """A client that gives up quickly: one try, bounded connect and read.

    redis-py retries with backoff by default, which would hold a request for
    seconds while Redis is away; we fall back to memory instead.
    """
    timeout = timeout_ms / 1000
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        health_check_interval=0,
    )


class ThreadConnections:
    """Commands sent on a connection of the calling thread's own.

    redis-py's client wraps every command in a pool checkout and release, a
    retry policy, event dispatch and observability hooks: half the CPU of a
    ``SET NX GET`` here (docs/benchmarks.md). The ingest hot path sends its
    few commands this way instead. Each thread's connection is made with
    the client's own settings (address, timeouts, protocol), so it fails as
    fast as the client does; on a timeout or a broken connection redis-py's
    connection drops itself (no late reply is left to be read as the next
    command's) and the thread's next command connects again.
    """

    def __init__(self, client: redis.Redis):
        pool = client.connection_pool
        self._connection_class = pool.connection_class
        self._connection_kwargs = dict(pool.connection_kwargs)
        self._local = threading.local()
        # Weak: a thread's connection closes when the thread ends.
        self._connections = weakref.WeakSet()
        self._lock = threading.Lock()

    def execute(self, *args):
        """Send one command and return its reply; raises redis-py's errors.

        A Redis restart closes every connection, and a connection that
        worked before learns it only when used again: then it connects again
        and sends the command once more, so a restart costs no fallback. A
        command may thus reach Redis twice, which suits only commands whose
        second run changes nothing for their sender (a claim that took
        effect before the connection broke is found holding the sender's
        own token). A timeout is not repeated: the server is there but slow.
        """
        local = self._local
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = self._connection_class(**self._connection_kwargs)
            local.connection = connection
            local.proven = False
            with self._lock:
                self._connections.add(connection)
        try:
            connection.send_command(*args)
            reply = connection.read_response()
        except redis.ConnectionError:
            if not local.proven:
                raise
            local.proven = False
            connection.send_command(*args)
            reply = connection.read_response()
        local.proven = True
        return reply

    def close(self) -> None:
        """Close every thread's connection (a later command connects again)."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.disconnect()


class LuaScript:
    """A Lua script run by its SHA1, loaded into Redis when Redis lacks it."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, connections: ThreadConnections, keys: list, args: list):
        try:
            return connections.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # A restarted or flushed Redis: EVAL runs it and caches it again.
            return connections.execute("EVAL", self.source, len(keys), *keys, *args)
