"""How long to wait before trying again: exponential backoff, capped, optionally jittered."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Wait `base` seconds after the first failure, doubling per failure up to `cap`.

    `jitter` is the share of each wait that is random (0.5: between half and all of it), so
    that callers that failed together do not retry together. `attempts` bounds the tries,
    the first included; None tries for ever.
    """

    base: float
    cap: float = math.inf
    attempts: int | None = None
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap <= 0:
            raise ValueError(f"a backoff waits a while: not base {self.base}, cap {self.cap}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter is a share between 0 and 1, not {self.jitter}")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"a backoff allows at least one attempt, not {self.attempts}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1 is the first) before the next."""
        # the exponent is bounded: a row may fail for days, and 2.0**1024 raises OverflowError
        ceiling = min(self.cap, self.base * 2.0 ** min(max(0, attempt - 1), 1023))
        if not self.jitter:
            return ceiling
        return random.uniform(1.0 - self.jitter, 1.0) * ceiling

    def tries_again(self, attempt: int) -> bool:
        """Whether failed attempt `attempt` (1 is the first) is followed by another."""
        return self.attempts is None or attempt < self.attempts
