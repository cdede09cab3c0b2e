"""The query frontend's Prometheus rows, read from the query path's plain counters at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from clipper_core.serving.query_path import QueryPath

__all__ = ["query_path_rows"]

Row = tuple[str, str, str, dict[str, str], Any]
_ROLLOUT_COUNTERS = (
    ("queries", "clipper_rollout_queries", "Queries a version under a rollout took (shadow: mirrored ones)"),
    ("errors", "clipper_rollout_errors", "Of those, the ones the version failed"),
    ("defaults", "clipper_rollout_defaults", "Of those, the ones with no output from the version in time"),
    ("agree", "clipper_rollout_shadow_agreements", "Shadow outputs equal to the current version's"),
    ("disagree", "clipper_rollout_shadow_disagreements", "Shadow outputs different from the current version's"),
    ("dropped", "clipper_rollout_shadow_dropped", "Mirrored queries dropped (the shadow candidate was backed up)"),
    ("reward_n", "clipper_rollout_feedback", "Feedback on the version's answers"),
    ("reward_sum", "clipper_rollout_feedback_reward", "Sum of the rewards of that feedback (mean: / feedback)"),
)


def query_path_rows(path: QueryPath) -> Iterator[Row]:
    for name, rt in sorted(path.snapshot.apps.items()):
        labels = {"app": name}
        yield ("histogram", "clipper_app_prediction_latency_seconds",
               "Latency of a predict request in the query path, decoded inputs to combined answer", labels, rt.latency)
        yield ("counter", "clipper_app_predictions", "Predictions answered (one per input)", labels,
               rt.predictions)
        yield ("counter", "clipper_app_default_predictions", "Predictions answered with the default output",
               labels, rt.defaults)
    for (model, version), mr in sorted(path.models.items()):
        labels = {"model": model, "version": version}
        yield ("histogram", "clipper_model_batch_size", "Inputs per batch sent to a replica", labels,
               mr.batch_sizes)
        yield ("histogram", "clipper_model_rpc_latency_seconds", "Batch round trip, send to result", labels,
               mr.rpc_latency)
        yield ("histogram", "clipper_model_compute_seconds", "Time inside the model per batch", labels,
               mr.compute_latency)
        yield ("histogram", "clipper_model_queue_seconds", "Time a task waited in the queue", labels,
               mr.queue_time)
        yield ("counter", "clipper_model_predictions", "Outputs received from replicas", labels, mr.predictions)
        yield ("counter", "clipper_model_errors", "Inputs the model failed on", labels, mr.errors)
        yield ("gauge", "clipper_model_replicas_connected", "Connected replicas", labels, mr.num_replicas)
        yield ("gauge", "clipper_model_queue_length", "Tasks waiting in the queue", labels, len(mr.queue))
        yield ("counter", "clipper_model_cache_hits", "Prediction cache hits", labels, mr.cache_hits)
        yield ("counter", "clipper_model_cache_misses", "Prediction cache misses", labels, mr.cache_misses)
        yield ("counter", "clipper_model_dropped_expired", "Tasks dropped because their deadline passed",
               labels, mr.queue.dropped)
        if mr.rollout is not None:
            yield from _rollout_rows(labels, mr.rollout.total, mr.rollout.latency)
    cache = path.cache
    if cache is not None:
        yield ("counter", "clipper_cache_hits", "Prediction cache hits, all models", {}, cache.hits)
        yield ("counter", "clipper_cache_misses", "Prediction cache misses, all models", {}, cache.misses)


def _rollout_rows(labels: dict[str, str], counts: Any, latency: Any) -> Iterator[Row]:
    """A version's rollout totals since this frontend started counting it (``serving.rollout``)."""
    yield ("histogram", "clipper_rollout_latency_seconds", "Query arrival to the version's output, under a rollout",
           labels, latency)
    for attr, name, help_text in _ROLLOUT_COUNTERS:
        yield ("counter", name, help_text, labels, getattr(counts, attr))
