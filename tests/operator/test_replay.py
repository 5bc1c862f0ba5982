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
