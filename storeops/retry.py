"""The one backoff rule used for every retry of an AWS call: exponential, capped, full jitter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def full_jitter_delay(attempt: int, base: float, cap: float, jitter: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): jitter x min(cap, base x 2^(attempt-1))."""
    return jitter() * min(cap, base * 2 ** (attempt - 1))


@dataclass(frozen=True)
class RetryPolicy:
    """How often to retry the failed entries of a batch call, and how long to wait in between."""

    max_attempts: int = 6
    base_delay: float = 0.1
    max_delay: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (1-based)."""
        return full_jitter_delay(attempt, self.base_delay, self.max_delay, self.jitter)

    def wait_before_retry(self, attempt: int) -> None:
        self.sleep(self.backoff(attempt))
