"""Admission control: refuse (503 + Retry-After) work that would overflow a queue or could not be answered
within the SLO anyway, so overload costs a fast answer instead of unbounded memory and timed-out queries."""

from __future__ import annotations

import math

from clipper_core.errors import Overloaded
from clipper_core.serving.model_runtime import ModelRuntime
from clipper_core.serving.queue import Task

__all__ = ["admit"]


def admit(limit: float, slo: float, enqueued: dict[ModelRuntime, list[Task]], length_share: float = 1.0) -> None:
    """Raise Overloaded unless every model version can take its new tasks and finish them within ``limit``
    seconds (a fraction of the ``slo``), its queue holding at most ``length_share`` of its maximum length (a
    low priority class gets a part). On refusal the new tasks' futures are cancelled: nothing awaits them
    yet, as the caller has not yielded to the loop since creating them."""
    for mr, tasks in enqueued.items():
        queued = len(mr.queue)
        wait = mr.expected_wait(len(tasks))
        longest = mr.queue.max_length if length_share >= 1.0 else int(mr.queue.max_length * length_share)
        if queued + len(tasks) > longest:
            why = f"its queue is full ({queued} tasks waiting, limit {longest})"
        elif wait > limit:
            why = f"{queued} tasks are queued, about {wait * 1000:.0f} ms of work for an SLO of {slo * 1000:.0f} ms"
        else:
            continue
        for task_list in enqueued.values():
            for task in task_list:
                task.future.cancel()
        retry = max(1, math.ceil(wait - slo)) if wait > slo else 1
        raise Overloaded(f"model {mr.label} is overloaded: {why}; retry later", headers={"Retry-After": str(retry)})
