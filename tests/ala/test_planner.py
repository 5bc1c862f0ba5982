"""Planner arithmetic on hand-made curves (``choose``) and on the fitted model (``plan``)."""

import math

import numpy as np
import pytest

from ala.planner import Demand, Deployment, Objectives, Policy, batch_grid, choose, plan

DEP = Deployment("meta-llama/Llama-3.1-8B-Instruct", "H100", 1, "vllm", "bfloat16", 1024, 256)
BATCHES = np.array([1.0, 2, 4, 8, 16, 32, 64])
# Conservative throughput 100 tokens/s per sequence up to batch 16, then flat at 1600.
LOWER = np.minimum(100.0 * BATCHES, 1600.0)
POINT = 1.25 * LOWER
UPPER = 1.5 * LOWER
CONF = np.full(BATCHES.size, 0.7)


def pick(demand=16000.0, objectives=Objectives(), policy=Policy(headroom=0.0), price=2.0):
    return choose(BATCHES, POINT, LOWER, UPPER, CONF, DEP, demand, objectives, policy, price, "given")


def test_throughput_peak_picks_smallest_batch_on_the_plateau():
    p = pick()
    # lower(16) = lower(32) = lower(64) = 1600: the smallest batch of the plateau wins.
    assert p.outcome == "ok" and p.batch_size == 16 and p.batch_limited_by == "throughput_peak"
    # 16000 / 1600 = 10 replicas exactly; lower bound on upper throughput 2400 -> ceil(6.67) = 7.
    assert p.replicas == {"target": 10, "lower_bound": 7, "upper_bound": 13, "uncapped": 10}
    # Upper bound: lower end of the doubled interval, 1600 * 1600/2000 = 1280 -> ceil(12.5) = 13.
    assert p.throughput_per_replica == {"value": 2000.0, "lower": 1600.0, "upper": 2400.0,
                                        "confidence_level": 0.9}
    assert p.latency["itl_ms"] == pytest.approx(10.0)  # 16 / 1600 s
    assert p.cost["per_hour"] == pytest.approx(20.0)
    assert p.cost["per_million_output_tokens"] == pytest.approx(20.0 / (16000 * 3600) * 1e6)


def test_inter_token_latency_limits_the_batch():
    # itl(bb) = bb / lower(bb): 10 ms up to 16, 20 ms at 32, 40 ms at 64.
    p = pick(objectives=Objectives(max_itl_ms=15.0))
    # 32 and 64 break 15 ms but add no throughput: the plateau, not the objective, binds.
    assert p.batch_size == 16 and p.batch_limited_by == "throughput_peak"
    p = pick(objectives=Objectives(max_itl_ms=9.0))
    # Every batch has 10 ms or more: nothing meets 9 ms.
    assert p.outcome == "infeasible" and "batch 1" in p.reasons[0]


def test_itl_objective_binds_on_a_rising_curve():
    lower = 100.0 * BATCHES  # never saturates: the best batch is the largest allowed
    p = choose(BATCHES, 1.25 * lower, lower, 1.5 * lower, CONF, DEP, 6400.0,
               Objectives(max_itl_ms=10.0), Policy(headroom=0.0), None, "none")
    assert p.batch_size == 64 and p.batch_limited_by == "throughput_peak"
    saturating = np.array([100, 190, 360, 640, 1000, 1300, 1500.0])
    p = choose(BATCHES, 1.1 * saturating, saturating, 1.2 * saturating, CONF, DEP, 3000.0,
               Objectives(max_itl_ms=20.0), Policy(headroom=0.0), None, "none")
    # itl: 10, 10.5, 11.1, 12.5, 16, 24.6, 42.7 ms -> batch 16 is the largest under 20 ms.
    assert p.batch_size == 16 and p.batch_limited_by == "max_itl_ms"
    assert p.replicas["target"] == 3 and p.cost is None


def test_request_latency_limits_the_batch():
    saturating = np.array([100, 190, 360, 640, 1000, 1300, 1500.0])
    # request latency = 256 * bb / lower: 2.56, 2.69, 2.84, 3.2, 4.1, 6.3, 10.9 s.
    p = choose(BATCHES, 1.1 * saturating, saturating, 1.2 * saturating, CONF, DEP, 1000.0,
               Objectives(max_request_latency_s=5.0), Policy(headroom=0.0), None, "none")
    assert p.batch_size == 16 and p.batch_limited_by == "max_request_latency_s"
    assert p.latency["request_latency_s"] == pytest.approx(256 * 16 / 1000.0)


def test_headroom_and_rounding_up():
    p = pick(demand=16001.0)
    assert p.replicas["target"] == 11  # one token/s over ten replicas' worth
    p = pick(demand=16000.0, policy=Policy(headroom=0.25))
    assert p.replicas["target"] == math.ceil(20000 / 1600)


def test_min_and_max_clip_with_reasons():
    p = pick(demand=1000.0, policy=Policy(headroom=0.0, min_replicas=3))
    assert p.replicas["target"] == 3 and p.replicas["uncapped"] == 1
    assert p.replicas_clipped_by == "min_replicas"
    p = pick(demand=160000.0, policy=Policy(headroom=0.0, max_replicas=40))
    assert p.replicas["target"] == 40 and p.replicas["uncapped"] == 100
    assert p.replicas["upper_bound"] == 40 and p.replicas_clipped_by == "max_replicas"
    assert any("capped at max_replicas=40" in r for r in p.reasons)


def test_zero_demand_uses_min_replicas():
    p = pick(demand=0.0, policy=Policy(min_replicas=2))
    assert p.replicas["target"] == 2 and any("no demand" in r for r in p.reasons) and p.outcome == "no_demand"


def test_too_wide_interval_is_insufficient_data_not_a_default():
    lower = LOWER / 10.0  # point / lower = 12.5: the model does not know
    p = choose(BATCHES, POINT, lower, UPPER, CONF, DEP, 16000.0, Objectives(), Policy(), 2.0, "given")
    assert p.outcome == "insufficient_data" and p.replicas is None
    assert "too wide" in p.reasons[-1]


@pytest.mark.parametrize("kwargs,msg", [(dict(confidence_level=1.0), "confidence_level"),
                                        (dict(min_replicas=3, max_replicas=2), "max_replicas"),
                                        (dict(headroom=-0.1), "headroom")])
def test_policy_validation(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Policy(**kwargs)


def test_demand_conversion_and_validation():
    assert Demand(requests_per_s=10).tokens_per_s(DEP) == 2560.0
    with pytest.raises(ValueError, match="exactly one"):
        Demand().tokens_per_s(DEP)
    with pytest.raises(ValueError, match="output_tokens"):
        Demand(requests_per_s=1).tokens_per_s(Deployment("m", "H100"))
    with pytest.raises(ValueError, match="accelerators"):
        Deployment("m", "H100", accelerators=0)


def test_grid_covers_powers_of_two():
    grid = batch_grid(256)
    assert {1, 2, 64, 256} <= set(grid.astype(int)) and grid.max() == 256


def test_plan_on_fitted_model_is_conservative_and_ranks_alternatives(small_model):
    p = plan(small_model, DEP, Demand(output_tokens_per_s=50000), Objectives(max_itl_ms=50))
    assert p.outcome == "ok" and p.batch_size >= 1
    tp = p.throughput_per_replica
    assert tp["lower"] < tp["value"] < tp["upper"]
    assert p.replicas["target"] == math.ceil(50000 * 1.1 / tp["lower"])
    assert p.replicas["lower_bound"] <= p.replicas["target"] <= p.replicas["upper_bound"]
    assert p.latency["itl_ms"] <= 50
    costs = [a["cost_per_million_output_tokens"] for a in p.alternatives]
    assert costs == sorted(costs) and len(costs) > 3
    assert all(0 <= a["confidence"] <= 1 for a in p.alternatives)


def test_ttft_and_percentile_objectives():
    from ala.planner import latency_factor

    # TTFT = prefill + one decode step: 40 ms + itl (10 ms up to batch 16, 20 at 32, 40 at 64).
    p = choose(BATCHES, POINT, LOWER, UPPER, CONF, DEP, 16000.0, Objectives(max_ttft_ms=55.0),
               Policy(headroom=0.0), 2.0, "given", prefill_s=0.040)
    assert p.batch_size == 16 and p.latency["ttft_ms"] == pytest.approx(50.0)
    # Request latency = TTFT + (256 - 1) x ITL.
    assert p.latency["request_latency_s"] == pytest.approx((50.0 + 255 * 10.0) / 1000)
    # At p90 the same limit binds earlier: the factor of an assumed lognormal spread.
    factor = latency_factor("ttft", 0.9)
    assert 1.5 < factor < 1.8 and latency_factor("itl", None) == 1.0
    p90 = choose(BATCHES, POINT, LOWER, UPPER, CONF, DEP, 16000.0, Objectives(max_ttft_ms=55.0 * factor * 0.9,
                 quantile=0.9), Policy(headroom=0.0), 2.0, "given", prefill_s=0.040)
    assert p90.outcome == "infeasible" and "p90 time to first token" in p90.reasons[0]
    with pytest.raises(ValueError, match="input_tokens"):
        choose(BATCHES, POINT, LOWER, UPPER, CONF, Deployment("m", "H100"), 1.0, Objectives(max_ttft_ms=5.0),
               Policy(), None, "none")


def test_measured_itl_scales_the_latency_objective():
    import pandas as pd

    from ala.planner import measured_itl_scale

    live = pd.DataFrame({"batch_size": [8.0, 32.0], "throughput_tokens_per_s": [800.0, 1600.0],
                         "itl_ms": [20.0, 40.0]})  # twice batch / throughput
    assert measured_itl_scale(live) == pytest.approx(2.0)
    assert measured_itl_scale(live.drop(columns="itl_ms")) == 1.0 and measured_itl_scale(None) == 1.0
    p = choose(BATCHES, POINT, LOWER, UPPER, CONF, DEP, 16000.0, Objectives(), Policy(headroom=0.0), 2.0, "given",
               itl_scale=2.0)
    assert p.batch_size == 16 and p.latency["itl_ms"] == pytest.approx(20.0)  # twice 16 / 1600 s
    assert pick(objectives=Objectives(max_itl_ms=15.0)).outcome == "ok"
    assert choose(BATCHES, POINT, LOWER, UPPER, CONF, DEP, 16000.0, Objectives(max_itl_ms=15.0), Policy(), 2.0,
                  "given", itl_scale=2.0).outcome == "infeasible"


def test_prefill_from_the_catalog():
    from ala.catalog import Catalog
    from ala.planner import prefill_seconds

    one, two = prefill_seconds(Catalog.load(), [DEP, Deployment(DEP.model, "H100", 2, input_tokens=1024)])
    # 2 x 8.03e9 x 1024 / (0.5 x 989e12) = 33 ms on one H100; half of it on two.
    assert one == pytest.approx(2 * 8.03e9 * 1024 / (0.5 * 989e12), rel=1e-6) and two == pytest.approx(one / 2)
    assert prefill_seconds(Catalog.load(), [Deployment("m", "H100")]) == [0.0]


def test_memory_fit_from_first_principles():
    from ala.catalog import Catalog
    from ala.feasibility import memory_fit

    c = Catalog.load()
    fit = memory_fit(c, "meta-llama/Llama-3.1-8B-Instruct", "H100", 1, "bfloat16", 1024, 256)
    # 8.03e9 x 2 B of weights; 80 GB x 0.9 - 2 GB usable; 2 x 32 layers x 8 heads x 128 x 2 B per token.
    assert fit.weights_gb == pytest.approx(16.06) and fit.usable_gb == pytest.approx(70.0)
    assert fit.kv_gb_per_sequence == pytest.approx(131072 * 1280 / 1e9)
    assert fit.max_batch == int((70.0 - 16.06) // (131072 * 1280 / 1e9)) and fit.min_accelerators == 1
    big = memory_fit(c, "meta-llama/Llama-3.1-70B-Instruct", "H100", 1, "bfloat16", 1024, 256)
    assert not big.fits and big.min_accelerators == 4
    assert memory_fit(c, "meta-llama/Llama-3.1-70B-Instruct", "H100", 1, "fp8", 1024, 256).min_accelerators == 2
    assert memory_fit(c, "nobody/unknown", "H100", 1, "bfloat16", 1, 1) is None


@pytest.mark.parametrize("model,count,smallest", [("meta-llama/Llama-3.1-70B-Instruct", 1, 4),
                                                  ("meta-llama/Llama-3.1-405B-Instruct", 1, 16)])
def test_a_model_that_cannot_run_is_infeasible_with_the_count_that_would(small_model, model, count, smallest):
    p = plan(small_model, Deployment(model, "H100", count, "vllm", "bfloat16", 1024, 256),
             Demand(output_tokens_per_s=10000), Objectives())
    assert p.outcome == "infeasible" and p.batch_limited_by == "memory" and p.replicas is None
    assert f"{smallest}x H100 would hold it" in p.reasons[0]
    # Alternatives only list configurations that fit.
    for alt in p.alternatives:
        assert memory_ok(small_model, model, alt)


def memory_ok(model, name, alt):
    from ala.feasibility import memory_fit

    return memory_fit(model.catalog_, name, alt["accelerator"], alt["accelerators"], "bfloat16", 1024, 256).fits


def test_the_kv_cache_caps_the_batch(small_model):
    # 1,280 tokens per request: Llama-3.1-8B's KV cache on one H100 holds 321 sequences.
    p = plan(small_model, Deployment("meta-llama/Llama-3.1-8B-Instruct", "H100", 1, "vllm", "bfloat16", 1024, 256),
             Demand(output_tokens_per_s=10000), Objectives(), Policy(max_batch=1024), alternatives=False)
    assert p.batch_size <= 321 and p.memory["max_batch"] == 321
    bb = np.array([1.0, 64, 128, 256, 512])
    lower = 50.0 * bb  # still rising at 512: only the cache stops it
    capped = choose(bb, 1.2 * lower, lower, 1.4 * lower, np.full(5, 0.8), DEP, 1000.0, Objectives(), Policy(),
                    None, "none", max_batch_fit=300)
    assert capped.batch_size == 256 and capped.batch_limited_by == "kv_cache"


def test_a_measured_fall_caps_the_batch(small_model):
    """Argonne measured Meta-Llama-3-8B with TensorRT-LLM on one A100 (static batches of
    2048/2048 tokens) to peak at batch 32 and fall by a fifth at 64 (KV-cache overflow).
    The fitted curve family cannot fall: the plan must not go past the measured peak."""
    from ala.planner import Deployment, Demand, Policy, plan

    d = Deployment("meta-llama/Meta-Llama-3-8B", "A100", 1, "TensorRT-LLM", "16bit", 2048, 2048,
                   batch_semantics="static offline batch (ala --static-batch)")
    p = plan(small_model, d, Demand(output_tokens_per_s=5000), policy=Policy(max_batch=256), alternatives=False)
    assert p.outcome in ("ok", "low_confidence") and p.batch_size <= 32
    from ala.planner import Evidence

    cap = Evidence.of_model(small_model).measured_peak(small_model, d)
    assert cap[0] == 32 and "falls beyond batch 32" in cap[1] and "argonne" in cap[1].lower()
    # Where the curve asked rises on (live points, a prior), the measured fall still caps it.
    rise = 100.0 * BATCHES
    rising = choose(BATCHES, 1.25 * rise, rise, 1.5 * rise, CONF, DEP, 1000.0, Objectives(), Policy(), None, "none",
                    measured_peak=cap)
    assert rising.batch_size == 32 and rising.batch_limited_by == "measured_peak"
    assert any("falls beyond batch 32" in r for r in rising.reasons)
    # The same deployment served with continuous batching has no measured fall: no cap from it.
    served = plan(small_model, Deployment("meta-llama/Meta-Llama-3-8B", "A100", 1, "TensorRT-LLM", "16bit",
                                          2048, 2048), Demand(output_tokens_per_s=5000),
                  policy=Policy(max_batch=256), alternatives=False)
    assert served.batch_limited_by != "measured_peak"
