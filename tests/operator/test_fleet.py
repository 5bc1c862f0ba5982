"""The simulated fleet's physics: the batch that serves a demand, and engine metric names."""

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
    dep.step(now=6.0, dt=1.0, t=6.0, rng=np.random.default_rng(0))
    assert [round(p.tokens) for p in dep.pods] == [round(truth(20.0))] * 2
    fleet = Fleet("http://127.0.0.1:1", [dep])
    text = fleet.exposition()
    fleet.server.server_close()
    assert 'sglang:generation_tokens_total{namespace="ns",deployment="d",pod="d-00001"}' in text
    assert "# TYPE sglang:num_running_reqs gauge" in text
