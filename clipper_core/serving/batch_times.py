"""How long a replica takes for a batch (#13 item 3): the batch-time model the dispatch loop times its next batch by.

A replica's container runs one batch at a time, and every batch pays the model's fixed cost once. Two ways to
keep the model busy with full batches, chosen by what the answers teach:

* **pipelining** (the fixed cost is small next to a round trip, the model's time is not): while one batch is in
  flight, the next is sent so that it reaches the container just as the running one finishes. Sent earlier, it
  would only wait there and could have grown in the queue; sent later (when the answer is back), the model idles
  for a round trip. When the model's time for the running batch is less than the round trip's own cost, the
  model is not what limits: a batch sent behind would only cost the frontend a batch more, so the next one waits
  for the answer (or a full batch).
* **merging** (the fixed cost is larger than the time the answered clients take to send their next queries, the
  *echo*): the next batch is held until the running one is answered, and then until its clients' next queries
  are in (or the echo time is over), so that one batch carries both. Sending the queued part on its own would
  pay the fixed cost twice for the same inputs: clients split into two groups that alternate, each batch half
  full. A client population that does not come back (open-loop traffic) teaches an echo near zero, and then
  nothing waits for it.
"""

from __future__ import annotations

__all__ = ["BatchTimes"]


class BatchTimes:
    """Compute seconds for a batch of ``n`` inputs, ``fixed + per_item × n``, fit by least squares over an
    exponentially weighted window of answered batches; and ``overhead``, the round trip's seconds beyond the
    model's (encode, send, receive), from batches that had the replica to themselves.

    Until the first answer, :meth:`compute` is ``None``: nothing is known to time a batch by. The split into a
    fixed and a per-input part needs batches of different sizes: the last slope told is kept while the recent
    batches all have one size, and until one is told the fixed cost is unknown (a model that costs 4 ms an
    input, seen only in batches of one, must not pass for one with a 4 ms fixed cost).
    """

    __slots__ = ("_echo", "_echo_prior", "_n", "_nn", "_nt", "_pipeline", "_slope", "_t", "_w", "answer_at",
                 "decay", "echo_ratio", "echo_seconds", "overhead")

    def __init__(self, *, decay: float = 0.9, overhead_s: float = 0.0005, echo_s: float = 0.001) -> None:
        self.decay = decay
        self.overhead = overhead_s
        self._w = self._n = self._t = self._nn = self._nt = 0.0
        self._slope: float | None = None
        self.answer_at: float | None = None
        """When the last batch sent is expected back (the dispatch loop's clock), if it can be told."""
        self._pipeline = False
        self.echo_ratio = 1.0
        """Share of an answered batch's inputs whose clients queue another within the echo time."""
        self.echo_seconds = echo_s
        """How long after an answer those next queries take to be queued."""
        self._echo_prior = echo_s
        self._echo: tuple[float, int, int, int, float] | None = None
        """The armed echo wait: (answered at, queued then, inputs answered, target length, until)."""

    def fixed(self) -> float | None:
        """The model's cost for a batch, whatever its size (the fit's intercept); ``None`` until batches of
        different sizes have told it apart from the per-input cost."""
        return None if self._slope is None else self.compute(0)

    def merging_pays(self) -> bool:
        """Whether holding a partial batch for the running batch's echo fills the model better than sending
        it behind: the idle time it costs (echo + round trip) is less than the fixed cost it saves."""
        fixed = self.fixed()
        return fixed is not None and fixed > self.echo_seconds + self.overhead

    def answered(self, now: float, n: int, queued: int) -> None:
        """A batch of ``n`` inputs was answered at ``now`` with ``queued`` tasks waiting: arm the echo wait."""
        expected = round(self.echo_ratio * n)
        if expected < 1 or not self.merging_pays():
            self._echo = None
            # Not waiting teaches nothing about the echo: drift back to the prior, so that one slow echo (a
            # stalled loop) does not turn merging off for good; if the echo really is slow, the next waits say so.
            self.echo_seconds += 0.02 * (self._echo_prior - self.echo_seconds)
            return
        fixed = self.fixed()
        assert fixed is not None  # (merging pays only once the fixed cost is known)
        self._echo = (now, queued, n, queued + expected, now + min(fixed, 3 * self.echo_seconds))

    def echo_wait(self, now: float) -> tuple[int, float] | None:
        """``(queue length, until)`` to wait for before forming a batch, or ``None``."""
        echo = self._echo
        if echo is None or now >= echo[4]:
            return None
        return echo[3], echo[4] - now

    def echo_over(self, now: float, queued: int) -> None:
        """The echo wait ended at ``now`` with ``queued`` tasks: learn how many came back, and how fast."""
        echo, self._echo = self._echo, None
        if echo is None:
            return
        at, base, n, target, until = echo
        ratio = min(1.0, max(0, queued - base) / n)
        self.echo_ratio = 0.8 * self.echo_ratio + 0.2 * ratio
        if queued >= target:  # (a loop that ran late says nothing beyond the wait it armed)
            self.echo_seconds = 0.8 * self.echo_seconds + 0.2 * (min(now, until) - at)

    def sent(self, now: float, n: int, *, behind_another: bool) -> None:
        """A batch of ``n`` inputs left at ``now``; ``behind_another``: the replica was still busy with one."""
        compute = self.compute(n)
        if compute is None or (behind_another and self.answer_at is None):
            self.answer_at = None
            return
        self._pipeline = compute >= self.overhead
        start = now + self.overhead
        if behind_another and self.answer_at is not None and self.answer_at > start:
            start = self.answer_at  # it runs once the one ahead of it is done
        self.answer_at = start + compute

    def send_next_at(self) -> float | None:
        """When a batch sent behind the running ones reaches the container as it becomes free; ``None``: not
        worth sending one behind (wait for the answer or a full batch)."""
        return None if self.answer_at is None or not self._pipeline else self.answer_at - self.overhead

    def observe(self, n: int, compute_s: float, latency_s: float | None = None) -> None:
        """One answered batch of ``n`` inputs whose model time was ``compute_s``; ``latency_s`` (its round trip)
        only when no other batch of the replica was in flight, so that it did not wait in the container."""
        d = self.decay
        self._w = d * self._w + 1.0
        self._n = d * self._n + n
        self._t = d * self._t + compute_s
        self._nn = d * self._nn + n * n
        self._nt = d * self._nt + n * compute_s
        mean_n = self._n / self._w
        var = self._nn / self._w - mean_n * mean_n
        if var > 0.25:  # sizes differ enough to tell the two parts apart
            self._slope = max(0.0, (self._nt / self._w - mean_n * self._t / self._w) / var)
        if latency_s is not None:
            self.overhead = 0.8 * self.overhead + 0.2 * max(0.0, latency_s - compute_s)

    def compute(self, n: int) -> float | None:
        """Predicted model seconds for ``n`` inputs (``None`` before any answer)."""
        if not self._w:
            return None
        mean_n, mean_t = self._n / self._w, self._t / self._w
        return max(0.0, mean_t + (self._slope or 0.0) * (n - mean_n))
