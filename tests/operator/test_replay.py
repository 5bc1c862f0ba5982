"""Trace replay: the fleet's bookkeeping, the baselines' rules, the ALA policy through the
operator's functions, and the command's JSON output."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ala.benchmarks import group_curves
from ala_operator.devstack.fleet import TrueCurve
from ala_operator.devstack.replay import TRACES, best_batch, default_scenarios, load_trace, replay


@pytest.fixture(scope="module")
def truth(table):
    return TrueCurve.from_curves(group_curves(table), "335d81212b")


def _trace(tmp_path, rate=20, seconds=600, out=100):
    t = np.arange(0, seconds, 1 / rate)
    path = tmp_path / "steady.csv"
    pd.DataFrame({"timestamp_s": t, "input_tokens": 500, "output_tokens": out}).to_csv(path, index=False)
    return path


def test_bundled_traces_load_and_scale(tmp_path):
    rng = np.random.default_rng(0)
    conv = load_trace(TRACES / "azure_llm_2023_conv.csv", 1, rng)
    assert len(conv) == 19366 and conv["timestamp_s"].is_monotonic_increasing
    assert len(load_trace(TRACES / "azure_llm_2023_conv.csv", 3, rng)) == 3 * 19366
    bad = tmp_path / "bad.csv"
    bad.write_text("time,input_tokens,output_tokens\n0,1,1\n")
    with pytest.raises(ValueError, match="bad.csv: missing column"):
        load_trace(bad, 1, rng)
    assert (TRACES / "README.md").read_text().count("CC-BY-4.0") >= 2  # attribution ships with the copy


def test_best_batch_meets_the_latency_objective(truth):
    b = best_batch(truth, 25.0)
    assert b / truth(b) * 1000 <= 25.0 and b == int(truth.max_batch)
    tight = best_batch(truth, 12.0)
    assert tight / truth(tight) * 1000 <= 12.0 < (tight + 1) / truth(tight + 1) * 1000


def test_static_fleet_serves_a_steady_trace_and_counts_gpu_hours(tmp_path, truth):
    s = replace(default_scenarios()[0], trace=_trace(tmp_path), scale=1, max_ttft_s=5.0)
    out = replay(s, "static", truth=truth)
    assert out.requests == 12000 and out.met == out.requests and out.violation_minutes == 0
    assert out.peak_replicas == 1  # 2,000 tok/s fits one replica at batch 64
    assert 600 / 3600 <= out.gpu_hours <= 700 / 3600


def test_reactive_scales_up_under_load_and_holds_replicas_through_the_stabilisation_window(tmp_path, truth):
    # Ten minutes at 100 req/s, then almost nothing: scale-down waits for the highest
    # recommendation of the last 300 s to expire (the HPA's default stabilisation).
    t = np.concatenate([np.arange(0, 600, 0.01), np.arange(600, 1200, 5.0)])
    path = tmp_path / "drop.csv"
    pd.DataFrame({"timestamp_s": t, "input_tokens": 500, "output_tokens": 100}).to_csv(path, index=False)
    s = replace(default_scenarios()[0], trace=path, scale=1)
    out = replay(s, "reactive", truth=truth)
    replicas = out.series["replicas"]
    assert max(replicas[:600]) >= 3 and out.scaling_actions >= 1  # counted after the pre-roll
    # The load is gone at 600 s, but recommendations of the last 300 s still stand.
    assert min(replicas[600:660]) >= replicas[599] - 1
    assert replicas[-1] < max(replicas)


def test_ala_policy_runs_the_operator_code_and_scores_itself(tmp_path, truth, small_model):
    s = replace(default_scenarios()[0], trace=_trace(tmp_path, rate=60, seconds=900), scale=1)
    out = replay(s, "ala", model=small_model, truth=truth)
    assert out.live_ape is not None and 0 <= out.live_ape < 0.5
    assert out.requests == 54000 and out.met / out.requests > 0.99
    assert out.series["batch"][-1][1] <= truth.max_batch  # the planner stays within engine.maxBatchSize


def test_command_prints_one_json_object_per_policy(tmp_path):
    path = _trace(tmp_path, rate=5, seconds=300)
    out = subprocess.run([sys.executable, "-m", "ala_operator.cli", "replay", "--trace", str(path), "--config",
                          "llama-8b-h100", "--policy", "static", "--policy", "oracle", "--scale", "2",
                          "--output", "json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["policy"] for r in rows] == ["static", "oracle"] and all(r["requests"] == 3000 for r in rows)
    bad = subprocess.run([sys.executable, "-m", "ala_operator.cli", "replay", "--trace", str(tmp_path / "none.csv")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "none.csv" in bad.stderr


# --- load shapes (days of 10-minute rates) on the fluid fleet ---------------------------------

from ala_operator.devstack.loadshape import (STEP_S, FluidFleet, auto_scale, burst_ratios, generate,  # noqa: E402
                                            load_shape, replay_shape, shape_scenarios)


def _shape(tmp_path, rates, window=600, name="shape.csv", extra=""):
    path = tmp_path / name
    rows = [f"{i * window},{r},{100 + i},{50}" for i, r in enumerate(rates)]
    path.write_text("window_start_s,req_per_s,mean_input_tokens,mean_output_tokens" + extra + "\n" +
                    "\n".join(rows) + "\n")
    return path


def test_bundled_shapes_load_with_their_gaps_and_licence():
    small = load_shape(TRACES / "servegen_m-small_10min.csv")
    assert small.skipped == 37 and small.start.size == 2016 - 37 and small.window_s == 600
    large = load_shape(TRACES / "servegen_m-large_10min.csv")
    assert large.skipped == 0 and large.span_s == 14 * 86400
    notice = (TRACES / "LICENSE-servegen.md").read_text()
    assert "Apache License, Version 2.0" in notice and "NSDI 2026" in notice


def test_malformed_shapes_are_refused_naming_the_problem(tmp_path):
    cases = {"window_start_s,rate\n0,1\n600,2\n": "missing column",
             "window_start_s,req_per_s\n0,1\n600,-2\n": "negative",
             "window_start_s,req_per_s\n0,1\n600,2\n1000,3\n": "equally spaced",
             "window_start_s,req_per_s\n0,0\n600,0\n": "rate zero",
             "window_start_s,req_per_s\n0,abc\n600,2\n": "not numeric",
             "window_start_s,req_per_s\n0,1\n": "two windows"}
    for i, (text, problem) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.csv"
        path.write_text(text)
        with pytest.raises(ValueError, match=problem):
            load_shape(path)


def test_generated_arrivals_keep_each_windows_rate_and_skip_gaps(tmp_path):
    shape = load_shape(_shape(tmp_path, [10, 10, 0, 0, 20, 20]))
    assert shape.skipped == 2
    demand = generate(shape, 3.0, np.random.default_rng(0), burst_ratios())
    per = int(600 / STEP_S)
    windows = demand.requests.reshape(-1, per)
    assert np.isnan(windows[2:4]).all()  # the gap: not simulated
    means = windows[[0, 1, 4, 5]].sum(axis=1) / 600
    assert np.allclose(means, [30, 30, 60, 60], rtol=0.05)
    assert np.nanstd(windows[4] / np.nanmean(windows[4])) > 0.05  # the real trace's bursts, not a flat rate


def test_fluid_fleet_queues_what_exceeds_capacity_and_times_the_waits(truth):
    fleet = FluidFleet(truth, 64, 60.0)
    fleet.scale_to(2, 0.0, ready_now=True)
    capacity = 2 * truth(64)
    served, running, serving, ok, waiting = fleet.step(0.0, 10.0, 0.5 * capacity * 10, 5.0, 1.0, 100.0)
    assert served == pytest.approx(0.5 * capacity) and ok == 1.0 and fleet.queue == 0 and serving == 2
    assert running < 2 * 64
    # Twice the capacity for 10 s: the queue grows linearly; arrivals wait up to 10 s, so
    # those in the first half of the step (waits up to 5 s) are on time.
    served, running, serving, ok, waiting = fleet.step(10.0, 10.0, 2 * capacity * 10, 5.0, 1.0, 100.0)
    assert served == pytest.approx(capacity) and fleet.queue == pytest.approx(capacity * 10)
    assert ok == pytest.approx(0.5) and running == 128 and waiting == pytest.approx(capacity * 10 / 100)
    fleet.scale_to(4, 20.0)  # new replicas serve after the cold start
    assert fleet.step(20.0, 10.0, 0.0, 5.0, 1.0, 100.0)[2] == 2
    assert fleet.step(80.0, 10.0, 0.0, 5.0, 1.0, 100.0)[2] == 4
    fleet.rollout(32, 90.0)  # every replica replaced, the overlap charged
    assert len(fleet.ready_at) == 8 and fleet.desired() == 4 and fleet.rolling_out(90.0)
    fleet.step(150.0, 10.0, 0.0, 5.0, 1.0, 100.0)
    assert len(fleet.ready_at) == 4 and set(fleet.limit) == {32} and not fleet.rolling_out(150.0)


def test_shape_replay_policies_on_a_day(tmp_path, truth, small_model):
    # Two days of a daily cycle (x4 peak to trough), 10-minute windows.
    hours = np.arange(0, 48, 1 / 6)
    path = _shape(tmp_path, list(20 + 60 * (0.5 + 0.5 * np.sin(2 * np.pi * (hours / 24 - 0.25)))))
    s = replace(shape_scenarios()[0], trace=path, output_tokens=50.0, input_tokens=100.0)
    shape = load_shape(path)
    s = replace(s, scale=auto_scale(shape, truth(best_batch(truth, s.max_itl_ms))))
    demand = generate(shape, s.scale, np.random.default_rng(0), burst_ratios())
    static = replay_shape(s, shape, "static", truth=truth, demand=demand)
    oracle = replay_shape(s, shape, "oracle", truth=truth, demand=demand)
    predictive = replay_shape(s, shape, "predictive", model=small_model, truth=truth, demand=demand)
    assert static.met / static.requests > 0.99 and static.scaling_actions == 0
    assert oracle.gpu_hours < 0.8 * static.gpu_hours
    assert predictive.decided_by and sum(predictive.decided_by.values()) >= 1400  # a refit every two minutes
    assert "forecast" in predictive.decided_by  # the second day is forecast from the first
    assert predictive.gpu_hours < static.gpu_hours and predictive.met / predictive.requests > 0.95
    assert len(predictive.series["replicas"]) == 288


def test_command_replays_a_load_shape_and_refuses_a_bad_one(tmp_path):
    path = _shape(tmp_path, [5, 5, 0, 8, 8, 6])
    out = subprocess.run([sys.executable, "-m", "ala_operator.cli", "replay", "--trace", str(path), "--config",
                          "llama-8b-h100", "--policy", "static", "--policy", "reactive", "--output", "json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["policy"] for r in rows] == ["static", "reactive"]
    assert all(r["skipped_windows"] == 1 and r["requests"] > 0 and r["scenario"].startswith("shape") for r in rows)
    bad = tmp_path / "bad.csv"
    bad.write_text("window_start_s,req_per_s\n0,1\n600,-1\n")
    refused = subprocess.run([sys.executable, "-m", "ala_operator.cli", "replay", "--trace", str(bad)],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "negative" in refused.stderr
