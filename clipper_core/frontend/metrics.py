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
        yield ("counter", "clipper_model_cancelled_tasks", "Tasks taken out before dispatch: their clients left",
               labels, mr.queue.cancelled)
        if mr.rollout is not None:
            yield from _rollout_rows(labels, mr.rollout.total, mr.rollout.latency)
    yield from _tenancy_rows(path)
    cache = path.cache
    if cache is not None:
        yield ("counter", "clipper_cache_hits", "Prediction cache hits, all models", {}, cache.hits)
        yield ("counter", "clipper_cache_misses", "Prediction cache misses, all models", {}, cache.misses)


def _tenancy_rows(path: QueryPath) -> Iterator[Row]:
    """Per app and API key with limits: queries admitted, refused by each limit, running; keys refused."""
    for name, rt in sorted(path.snapshot.apps.items()):
        guard = rt.guard
        if guard is None:
            continue
        yield ("counter", "clipper_app_refused_missing_key", "Queries refused (401): the app requires an API key",
               {"app": name}, path.snapshot.keys.refusals.missing.get(name, 0))
        for quota in guard.quotas():
            labels = {"app": name, "key": quota.key_id or "-"}
            yield ("counter", "clipper_quota_admitted", "Queries admitted by the rate limits and quotas", labels,
                   quota.admitted)
            yield ("gauge", "clipper_quota_running", "Queries running (the max_concurrent count)", labels,
                   quota.active)
            yield ("gauge", "clipper_quota_share", "This frontend's share of the limits (of the demand across "
                   "frontends)", labels, quota.share)
            for limit, count in sorted(quota.refused.items()):
                yield ("counter", "clipper_quota_refused", "Queries refused (429) by a limit", {**labels,
                       "limit": limit}, count)
    refusals = path.snapshot.keys.refusals
    yield ("counter", "clipper_api_keys_refused", "Queries refused for their API key (401 invalid, 403 other app)",
           {"reason": "invalid"}, refusals.invalid)
    yield ("counter", "clipper_api_keys_refused", "Queries refused for their API key (401 invalid, 403 other app)",
           {"reason": "other_app"}, refusals.other_app)


def _rollout_rows(labels: dict[str, str], counts: Any, latency: Any) -> Iterator[Row]:
    """A version's rollout totals since this frontend started counting it (``serving.rollout``)."""
    yield ("histogram", "clipper_rollout_latency_seconds", "Query arrival to the version's output, under a rollout",
           labels, latency)
    for attr, name, help_text in _ROLLOUT_COUNTERS:
        yield ("counter", name, help_text, labels, getattr(counts, attr))
