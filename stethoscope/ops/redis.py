"""Redis clients that fail fast: every Redis user falls back when it is away."""

import redis
from redis.backoff import NoBackoff
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
