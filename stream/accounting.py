"""Sample accounting: every sample received ends used or dropped with a counted reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Accounting"]


@dataclass
class Accounting:
    """Counters of one runtime. Invariant: samples_in == samples_used + sum(dropped.values())."""

    samples_in: int = 0
    samples_used: int = 0
    dropped: Counter = field(default_factory=Counter)
    masked_values: Counter = field(default_factory=Counter)
    windows_scored: int = 0
    intervals_emitted: int = 0
    intervals_discarded: int = 0

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            self.dropped[reason] += int(n)

    @property
    def balanced(self) -> bool:
        return self.samples_in == self.samples_used + sum(self.dropped.values())

    def to_dict(self) -> dict:
        return {
            "samples_in": self.samples_in,
            "samples_used": self.samples_used,
            "dropped": dict(sorted(self.dropped.items())),
            "masked_values": dict(sorted(self.masked_values.items())),
            "windows_scored": self.windows_scored,
            "intervals_emitted": self.intervals_emitted,
            "intervals_discarded": self.intervals_discarded,
            "balanced": self.balanced,
        }
