"""The reconcile benchmark and the soak run, short: they run end to end over HTTP, every
refit succeeds, and they print the figures they promise (timings are not asserted)."""

import json

from ala_operator.devstack.bench import reconcile_benchmark, soak


def test_reconcile_benchmark_refits_every_resource(small_model):
    lines = []
    rows = reconcile_benchmark([5], model=small_model, stream=lines.append)
    assert rows[0]["resources"] == 5 and rows[0]["failed_refits"] == 0
    assert {"per_resource_ms_median", "per_resource_ms_p95", "max_rss_mb"} <= set(json.loads(lines[-1]))


def test_soak_runs_cycles_of_simulated_time(small_model):
    lines = []
    row = soak(resources=4, minutes=3, model=small_model, stream=lines.append)
    assert row["refits"] == 12 and row["failed_refits"] == 0
    assert [json.loads(line).get("cycle") for line in lines[:-1]] == [1, 2, 3]
    assert {"refits_per_s", "per_resource_ms_p95", "peak_rss_mb", "rss_growth_mb_per_cycle_second_half"} <= set(row)
