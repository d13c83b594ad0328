"""Token buckets: in Redis when REDIS_URL is set (shared by every worker), else in memory.

Each bucket's name says what it limits (`credentials:ip:…`, `account:…`): one name, one rate, or
two limits of different rates would drain each other. `take=False` looks without taking, for
buckets that count only failures.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int  # bucket size (burst)
    remaining: int
    retry_after_s: int  # until one request is allowed again (0 when allowed)
    reset_s: int  # until the bucket is full again

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


def _decide(tokens: float, allowed: bool, rate: float, burst: int) -> Decision:
    missing = burst - tokens
    return Decision(
        allowed,
        burst,
        max(0, math.floor(tokens)),
        0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
        math.ceil(missing / rate),
    )


@runtime_checkable
class RateLimiter(Protocol):
    """MemoryRateLimiter, RedisRateLimiter."""

    def hit(self, key: str, rate: float, burst: int, take: bool = True) -> Decision: ...


class MemoryRateLimiter:
    """One process only: right for the embedded default with one worker, approximate with more."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, rate: float, burst: int, take: bool = True) -> Decision:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(burst, tokens + (now - last) * rate)
            allowed = tokens >= 1
            if allowed and take:
                tokens -= 1
            self._buckets[key] = (tokens, now)
        return _decide(tokens, allowed, rate, burst)


# Refill and take atomically inside Redis, with Redis's clock, so workers never disagree.
TOKEN_BUCKET = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
local rate, burst, take = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or t
tokens = math.min(burst, tokens + (t - at) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - take; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', t)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._redis.register_script(TOKEN_BUCKET)

    def hit(self, key: str, rate: float, burst: int, take: bool = True) -> Decision:
        allowed, tokens = self._script(keys=[f"emoscope:ratelimit:{key}"], args=[rate, burst, int(take)])
        return _decide(float(tokens), bool(allowed), rate, burst)


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
