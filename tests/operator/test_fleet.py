"""The simulated fleet's physics: the batch that serves a demand, and engine metric names."""

import pytest
import numpy as np

from ala.benchmarks import group_curves, load_benchmarks
from ala_operator.devstack.fleet import Fleet, SimulatedDeployment, TrueCurve


def test_true_curve_inverts_and_saturates():
    truth = TrueCurve.from_curves(group_curves(load_benchmarks()), "335d81212b")
    for batch in (2.0, 17.0, 50.0):
        assert abs(truth.batch_for(truth(batch)) - batch) < 1e-3
    assert truth.batch_for(10 * truth(truth.max_batch)) == truth.max_batch
    assert truth.batch_for(0.0) == 0.0


def test_ready_replicas_share_the_demand_and_export_engine_names():
    truth = TrueCurve.from_curves(group_curves(load_benchmarks()), "335d81212b")
    dep = SimulatedDeployment("ns", "d", "sglang", truth, demand=lambda t: 2 * truth(20.0), startup_s=5, noise=0.0)
    dep.reconcile(2, now=0.0)
    dep.step(now=1.0, dt=1.0, t=1.0, rng=np.random.default_rng(0))
    assert all(p.tokens == 0 for p in dep.pods)  # still starting
    rng = np.random.default_rng(0)
    dep.step(now=6.0, dt=1.0, t=6.0, rng=rng)
    first = [p.tokens for p in dep.pods]
    assert 0 < first[0] < truth(20.0) / 2  # a new pod's batch fills with its arrivals, it does not jump
    for second in range(7, 60):
        dep.step(now=float(second), dt=1.0, t=float(second), rng=rng)
    before = [p.tokens for p in dep.pods]
    dep.step(now=60.0, dt=1.0, t=60.0, rng=rng)
    assert [round(p.tokens - b) for p, b in zip(dep.pods, before)] == [round(truth(20.0))] * 2  # then its share
    fleet = Fleet("http://127.0.0.1:1", [dep])
    text = fleet.exposition()
    fleet.server.server_close()
    assert ('sglang:realtime_tokens_total{namespace="ns",service="d",pod="d-00001",model_name="335d81212b",'
            'engine_type="unified",tp_rank="0",pp_rank="0",mode="decode"}') in text
    assert 'sglang:generation_tokens_total{namespace="ns",service="d",pod="d-00001",' in text  # per finished request
    assert "# TYPE sglang:num_running_reqs gauge" in text
    assert "# TYPE sglang:e2e_request_latency_seconds histogram" in text


def test_finished_requests_reach_completion_counters_a_request_duration_later():
    truth = TrueCurve.from_curves(group_curves(load_benchmarks()), "335d81212b")
    dep = SimulatedDeployment("ns", "d", "tgi", truth, demand=lambda t: truth(20.0), startup_s=0, noise=0.0,
                              output_tokens=256)
    dep.reconcile(1, now=0.0)
    latency = 256 * dep.truth.batch_for(truth(20.0)) / truth(20.0)
    rng = np.random.default_rng(0)
    dep.step(now=1.0, dt=1.0, t=1.0, rng=rng)
    rank = dep.pods[0].ranks[0]
    assert rank.decoded > 0 and rank.finished_tokens == 0  # none finished yet
    for second in range(2, 300):
        dep.step(now=float(second), dt=1.0, t=float(second), rng=rng)
    done, spent, made = rank.finished, rank.latency_sum, rank.finished_tokens
    for second in range(300, 320):
        dep.step(now=float(second), dt=1.0, t=float(second), rng=rng)
    assert (rank.latency_sum - spent) / (rank.finished - done) == pytest.approx(latency, rel=1e-6)
    assert rank.finished_tokens - made == pytest.approx(20 * truth(20.0), rel=1e-6)  # all of it, a latency later
