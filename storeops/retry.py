"""The one backoff rule used for every retry of an AWS call: exponential, capped, full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable


def full_jitter_delay(attempt: int, base: float, cap: float, jitter: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): jitter x min(cap, base x 2^(attempt-1))."""
    return jitter() * min(cap, base * 2 ** (attempt - 1))
