"""Adaptive batch size per replica (AIMD, the Clipper paper's design): grow while batches finish within the
latency budget, back off when one does not."""

from __future__ import annotations

__all__ = ["BatchSizer"]


class BatchSizer:
    """AIMD batch size for one replica: grow by ``step`` while batches finish within the latency budget, cut
    by ``backoff`` (10%) when one does not. A fixed ``batch_size`` (>0) disables adaptation."""

    __slots__ = ("backoff", "budget", "fixed", "max_size", "size", "step")

    def __init__(self, budget_s: float, fixed: int = -1, *, initial: int = 1, step: int = 1,
                 backoff: float = 0.9, max_size: int = 4096) -> None:
        self.budget = budget_s
        self.fixed = fixed
        self.size = float(fixed if fixed > 0 else initial)
        self.step = step
        self.backoff = backoff
        self.max_size = max_size

    @property
    def batch_size(self) -> int:
        return self.fixed if self.fixed > 0 else max(1, int(self.size))

    def observe(self, batch_len: int, latency_s: float) -> None:
        """Feed back one finished batch of ``batch_len`` tasks that took ``latency_s``."""
        if self.fixed > 0:
            return
        if latency_s > self.budget:
            self.size = max(1.0, self.size * self.backoff)
        elif batch_len >= int(self.size):
            # Only grow when the batch was full: a half-empty batch says nothing about a bigger one.
            self.size = min(float(self.max_size), self.size + self.step)
