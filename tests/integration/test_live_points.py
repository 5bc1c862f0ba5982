"""Live points against a known truth, through a real Prometheus backfilled with what the
engines export (their names, labels and counter semantics) and the operator's own query
path: the ``bench live-points`` run, with the bounds issue 15 sets."""

import json

from ala_operator.devstack.livebench import live_point_benchmark


def test_every_scenario_is_within_three_percent_median_and_ten_percent_p90(require_prometheus):
    lines = []
    rows = live_point_benchmark(stream=lines.append)
    assert [json.loads(line) for line in lines] == rows
    assert {r["engine"] for r in rows} == {"vllm", "sglang", "tgi", "tensorrt-llm"}
    for row in rows:
        assert row["points"] >= 1, row
        assert abs(row["median_bias"]) <= 0.03 and row["p90_abs_bias"] <= 0.10, row
    # The fleet-wide ratio it replaces is off by a fifth or more where pods or moments differ.
    fleet = {r["scenario"]: r["fleet_median_bias"] for r in rows}
    assert fleet["uneven pods (60 and 4)"] < -0.15 and fleet["bursty (30 s at 64, 30 s idle)"] < -0.15


def test_a_deployment_teaches_its_own_curve_and_the_interval_narrows(require_prometheus, held_out):
    """The prior 30% off at the operating batch; refit every minute through a real
    Prometheus: within 5% by 15 minutes, the interval covering the truth and narrowing,
    the confidence growing, as evidence accumulates."""
    from ala_operator.devstack.livebench import convergence
    _, model = held_out
    rows = {r["minute"]: r for r in convergence(model, minutes=30, stream=lambda line: None)}
    assert abs(rows[1]["error"]) > 0.15  # the prior alone
    assert abs(rows[15]["error"]) <= 0.05 and rows[15]["covered"] and rows[30]["covered"]
    widths = [rows[m]["width"] for m in (1, 5, 15, 30)]
    assert widths == sorted(widths, reverse=True) and widths[-1] < widths[0] / 3
    assert rows[30]["confidence"] > rows[5]["confidence"] > rows[1]["confidence"]
