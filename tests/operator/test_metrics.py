"""The operator's metrics, scraped over real HTTP from prometheus-client's own server."""

import urllib.request

import numpy as np

from ala.planner import Deployment, Objectives, Policy, choose
from ala_operator.metrics import OperatorMetrics


def _plan():
    bb = np.array([1.0, 8, 32])
    lower = np.array([100.0, 800, 2000])
    return choose(bb, lower * 1.2, lower, lower * 1.4, np.full(3, 0.8), Deployment("m", "H100"), 20000.0,
                  Objectives(), Policy(headroom=0.0), 3.0, "given")


def _scrape(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def test_publish_scrape_and_forget():
    metrics = OperatorMetrics()
    server = metrics.serve(0, "127.0.0.1")
    try:
        metrics.publish("llm", "llama", _plan(), {"ape": 0.04, "coverage": 0.9, "samples": 5}, observed=1900.0)
        metrics.refit_seconds.observe(0.02)
        metrics.query_failures.labels("timeout").inc()
        text = _scrape(server)
        assert 'ala_recommended_replicas{bound="target",name="llama",namespace="llm"} 10.0' in text
        assert 'ala_predicted_throughput_tokens_per_second{name="llama",namespace="llm",quantity="lower"} 2000.0' in text
        assert 'ala_live_ape_ratio{name="llama",namespace="llm"} 0.04' in text
        assert 'ala_prometheus_query_failures_total{reason="timeout"} 1.0' in text
        assert "ala_refit_duration_seconds_bucket" in text
        metrics.forget("llm", "llama")
        assert 'name="llama"' not in _scrape(server)
    finally:
        server.shutdown()
        server.server_close()


def test_a_plan_without_a_recommendation_removes_its_gauges():
    """No stale answer on a dashboard: after an infeasible plan the replicas, batch,
    confidence and predicted throughput series of the resource are gone (the current
    replicas and live accuracy stay: they are still true)."""
    metrics = OperatorMetrics()
    server = metrics.serve(0, "127.0.0.1")
    try:
        metrics.publish("llm", "llama", _plan(), {"ape": 0.04, "coverage": 0.9, "samples": 5}, desired=3, ready=3)
        assert 'ala_recommended_batch_size{name="llama",namespace="llm"}' in _scrape(server)
        bb = np.array([1.0, 8, 32])
        lower = np.array([100.0, 800, 2000])
        infeasible = choose(bb, lower * 1.2, lower, lower * 1.4, np.full(3, 0.8), Deployment("m", "H100"), 20000.0,
                            Objectives(max_itl_ms=0.001), Policy(headroom=0.0), 3.0, "given")
        assert infeasible.outcome != "ok"
        metrics.publish("llm", "llama", infeasible, {"ape": 0.05, "coverage": 0.9, "samples": 6}, desired=3, ready=3)
        text = _scrape(server)
        for name in ("ala_recommended_replicas{", "ala_recommended_batch_size{", "ala_confidence{",
                     "ala_predicted_throughput_tokens_per_second{"):
            assert not [line for line in text.splitlines() if line.startswith(name) and 'name="llama"' in line], name
        assert 'ala_current_replicas{name="llama",namespace="llm",state="ready"} 3.0' in text
        assert 'ala_live_ape_ratio{name="llama",namespace="llm"} 0.05' in text
    finally:
        server.shutdown()
        server.server_close()
