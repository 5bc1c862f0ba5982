"""The engine's batch limit in a pod template: found where each engine's own launcher reads
it (flags as vLLM, SGLang, TGI and trtllm-serve spell them; TGI's environment variables),
changed in place, and a rollout in progress recognised."""

import pytest

from ala_operator.batchknob import find, rolling_out, with_limit


def _deployment(containers, status=None, generation=1):
    return {"metadata": {"generation": generation, "resourceVersion": "7"}, "spec": {
        "replicas": 2, "template": {"spec": {"containers": containers}}}, "status": status or {}}


@pytest.mark.parametrize("engine, container, value", [
    ("vllm", {"name": "vllm", "args": ["--model", "m", "--max-num-seqs", "128"]}, 128),
    ("vllm", {"name": "vllm", "command": ["vllm", "serve", "m", "--max-num-seqs=96"]}, 96),
    ("sglang", {"name": "s", "args": ["--max-running-requests", "48", "--tp", "2"]}, 48),
    ("tgi", {"name": "tgi", "env": [{"name": "MAX_BATCH_SIZE", "value": "32"}]}, 32),
    ("tgi", {"name": "tgi", "args": ["--max-concurrent-requests", "256"]}, 256),
    ("tensorrt-llm", {"name": "t", "args": ["trtllm-serve", "m", "--max_batch_size", "64"]}, 64),
])
def test_each_engines_knob_is_found_and_changed_in_place(engine, container, value):
    obj = _deployment([{"name": "sidecar", "args": ["--max-num-seqs", "1"]} if engine != "vllm" else
                       {"name": "sidecar"}, container])
    knob = find(engine, obj)
    assert knob is not None and knob.value == value and knob.container == 1
    changed = with_limit(obj, knob, 200)
    assert find(engine, _deployment(changed)).value == 200
    assert changed[0] == obj["spec"]["template"]["spec"]["containers"][0]  # the rest is untouched
    assert obj["spec"]["template"]["spec"]["containers"][1] == container  # the input is not modified


def test_a_template_without_the_knob_or_with_a_non_number_has_none():
    assert find("vllm", _deployment([{"name": "vllm", "args": ["--model", "m"]}])) is None
    assert find("vllm", _deployment([{"name": "vllm", "args": ["--max-num-seqs", "$(SEQS)"]}])) is None
    assert find("sglang", _deployment([{"name": "s", "env": [{"name": "MAX_BATCH_SIZE", "value": "8"}]}])) is None
    assert find("vllm", {"kind": "Service"}) is None


def test_rollouts_are_recognised():
    settled = {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
               "availableReplicas": 2}
    assert not rolling_out(_deployment([], settled, generation=3))
    assert rolling_out(_deployment([], settled, generation=4))  # the controller has not seen the edit
    assert rolling_out(_deployment([], {**settled, "updatedReplicas": 1}, generation=3))
    assert rolling_out(_deployment([], {**settled, "unavailableReplicas": 1}, generation=3))
    assert rolling_out(_deployment([], {**settled, "replicas": 3}, generation=3))  # old pods still there
    assert rolling_out(_deployment([], {"observedGeneration": 1, "currentRevision": "a", "updateRevision": "b"}))
