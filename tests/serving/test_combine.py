"""What a prediction says when the model failed: per-item errors, whole-batch errors, broken batch contracts."""

from __future__ import annotations

from tests.serving.fakes import ServingHarness, doubles


async def _three_items_in_one_batch(serving: ServingHarness) -> None:
    await serving.add_app(default_output="-1.0")
    await serving.add_model(app="app", batch_size=3)


async def test_a_per_item_error_defaults_that_item_only(serving: ServingHarness) -> None:
    await _three_items_in_one_batch(serving)
    replica = await serving.connect()
    task = serving.predict_soon("app", [doubles(1.0), doubles(-2.0), doubles(3.0)])
    batch = await replica.next_batch()
    assert len(batch) == 3
    batch.answer([1.0, None, 3.0], errors={1: "ValueError: negative input -2.0"})
    good, bad, also_good = await task
    assert (good.output, good.default, good.explanation) == (1.0, False, "")
    assert (bad.output, bad.default) == (-1.0, True)
    assert bad.explanation == "model 'm' failed: ValueError: negative input -2.0"
    assert (also_good.output, also_good.default) == (3.0, False)
    assert serving.runtime().errors == 1


async def test_a_whole_batch_error_defaults_every_item_with_the_error(serving: ServingHarness) -> None:
    await _three_items_in_one_batch(serving)
    replica = await serving.connect()
    task = serving.predict_soon("app", [doubles(1.0), doubles(2.0), doubles(3.0)])
    (await replica.next_batch()).fail("RuntimeError: this model always fails")
    predictions = await task
    assert [(p.output, p.default) for p in predictions] == [(-1.0, True)] * 3
    assert {p.explanation for p in predictions} == {"model 'm' failed: RuntimeError: this model always fails"}
    # failures are not cached: the same input goes to the model again
    again = serving.predict_soon("app", [doubles(1.0)])
    (await replica.next_batch()).answer([1.0])
    assert (await again)[0].output == 1.0


async def test_a_wrong_number_of_outputs_fails_the_whole_batch_naming_both_lengths(serving: ServingHarness) -> None:
    await _three_items_in_one_batch(serving)
    replica = await serving.connect()
    task = serving.predict_soon("app", [doubles(1.0), doubles(2.0), doubles(3.0)])
    (await replica.next_batch()).answer([1.0, 2.0])
    predictions = await task
    assert [p.default for p in predictions] == [True] * 3
    assert {p.explanation for p in predictions} == {
        "model 'm' failed: model returned 2 outputs for a batch of 3 inputs"}
    assert serving.runtime().errors == 3


async def test_outputs_that_are_not_a_list_fail_the_batch(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.add_model(app="app")
    replica = await serving.connect()
    task = serving.predict_soon("app", [doubles(1.0)])
    (await replica.next_batch()).reply({"out": "oops"})
    [prediction] = await task
    assert prediction.default is True
    assert prediction.explanation == "model 'm' failed: model returned str outputs for a batch of 1 inputs"
