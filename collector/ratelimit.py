"""A per-client rate limit: one token bucket per client IP, in memory only, bounded.

Buckets are keyed by a hash of the IP under a random per-process key, so not even a memory
dump holds an address, and nothing here is ever logged or written. At most MAX_CLIENTS
buckets are kept; the least recently seen client is forgotten first. An attacker rotating
addresses can therefore reset other clients' buckets (they get a fresh burst), but can never
grow memory past the cap.
"""

from __future__ import annotations

import hashlib
import math
import secrets

MAX_CLIENTS = 100_000


class RateLimit:
    def __init__(self, per_minute: int, max_clients: int = MAX_CLIENTS) -> None:
        self.capacity = float(per_minute)  # a client may burst a whole minute's allowance
        self.per_ms = per_minute / 60_000
        self.max_clients = max_clients
        self._key = secrets.token_bytes(16)
        self._buckets: dict[bytes, tuple[float, int]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, ip: str, now_ms: int) -> int:
        """Spend one token for `ip`: 0 if allowed, else whole seconds until the next token."""
        if self.per_ms <= 0:
            return 0
        key = hashlib.blake2b(ip.encode(), key=self._key, digest_size=8).digest()
        state = self._buckets.pop(key, None)  # re-inserted below: the dict stays in LRU order
        if state is None:
            tokens = self.capacity
            if len(self._buckets) >= self.max_clients:
                del self._buckets[next(iter(self._buckets))]
        else:
            tokens = min(self.capacity, state[0] + max(0, now_ms - state[1]) * self.per_ms)
        if tokens < 1:
            self._buckets[key] = (tokens, now_ms)
            return max(1, math.ceil((1 - tokens) / self.per_ms / 1000))
        self._buckets[key] = (tokens - 1, now_ms)
        return 0
