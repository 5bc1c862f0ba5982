"""Bad resources: any mangled spec gets a SpecError naming a field with a CamelCase reason
(never another exception), and the handler's condition leaves the stored recommendation
where it was."""

import copy
import logging
import re

import kopf
import pytest
from support.resources import set_path
from hypothesis import given, settings
from hypothesis import strategies as st

from ala_operator.handlers import check_spec, refit
from ala_operator.spec import SpecError, parse_spec

pytestmark = pytest.mark.faults

junk = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                 st.text(max_size=12), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
PATHS = ["model", "hardware", "hardware.accelerator", "hardware.acceleratorsPerReplica", "engine", "engine.name",
         "engine.precision", "engine.maxBatchSize", "workload", "workload.inputTokens", "workload.outputTokens",
         "demand", "demand.tokensPerSecond", "demand.requestsPerSecond", "demand.query", "slo",
         "slo.maxInterTokenLatencyMs", "slo.maxRequestLatencySeconds", "prometheus", "prometheus.url",
         "prometheus.selector", "prometheus.timeoutSeconds", "prometheus.stepSeconds", "prometheus.queries",
         "policy", "policy.mode", "policy.minReplicas", "policy.maxReplicas", "policy.confidenceLevel",
         "policy.headroom", "policy.maxStep", "policy.refitIntervalSeconds", "cost.acceleratorPricePerHour",
         "targetRef", "targetRef.name", "targetRef.kind"]
STORED = {"recommendation": {"replicas": {"target": 7}, "batchSize": 64}, "scorecard": {"ape": 0.02}}


@settings(max_examples=400, deadline=None)
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), junk), min_size=1, max_size=4))
def test_mangled_specs_fail_with_a_named_field_or_parse(examples, changes):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    for path, value in changes:
        set_path(spec, path, value)
    try:
        parse_spec(spec)
    except SpecError as exc:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", exc.reason), exc.reason
        assert str(exc).startswith("spec."), str(exc)
    # The timer's body, as it meets the resource: a valid spec within its refit interval
    # (so nothing is fetched) or an invalid one. Only SpecValid changes; what is stored stays.
    valid = check_spec(spec=spec, meta={"generation": 3}, logger=logging.getLogger("test"))["valid"]
    patch = kopf.Patch()
    stored = dict(copy.deepcopy(STORED), lastRefitTime="2099-01-01T00:00:00Z", refitGeneration=3)
    refit(spec=spec, meta={"generation": 3}, status=stored, patch=patch, logger=logging.getLogger("test"),
          memo=None)
    assert set(patch["status"]) <= {"conditions", "observedGeneration"}  # nothing stored is touched
    cond = patch["status"]["conditions"][0]
    assert cond["type"] == "SpecValid" and cond["status"] == ("True" if valid else "False")


@settings(max_examples=100, deadline=None)
@given(spec=junk)
def test_a_spec_that_is_not_an_object(spec):
    with pytest.raises(SpecError):
        parse_spec(spec)
