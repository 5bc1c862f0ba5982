"""Importers on hand-written samples of each tool's documented result format."""

from pathlib import Path

import pytest

from ala import BenchmarkError
from ala.importers import Context, detect_format, import_results

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "importers"
CTX = Context(hardware="H100", num_gpus=1, precision="bfloat16")


def test_vllm_results_become_curve_points():
    table = import_results([FIX / "vllm_c16.json", FIX / "vllm_c64.json"], CTX)
    assert list(table["batch_size"]) == [16.0, 64.0]
    assert list(table["throughput_tokens_per_s"]) == [1835.2, 5437.9]
    assert (table["input_tokens"] == 1024).all() and (table["output_tokens"] == 256).all()
    assert table["model"].iloc[0] == "meta-llama/Llama-3.1-8B-Instruct"
    assert table["itl_ms"].iloc[0] == pytest.approx(8.25)
    assert table["e2e_latency_s"].iloc[1] == pytest.approx(3.013)
    assert table["config_id"].nunique() == 1  # the two files are one curve


def test_rate_based_run_uses_littles_law():
    table = import_results([FIX / "vllm_rate20.json"], CTX)
    assert table["batch_size"].iloc[0] == pytest.approx(21.24 * 3.013)
    assert "Little" in table["batch_semantics"].iloc[0]


def test_guidellm_sweep_gives_one_row_per_benchmark():
    table = import_results([FIX / "guidellm_benchmarks.json"], CTX)
    assert list(table["batch_size"]) == [8.0, 32.0, 75.2]  # streams, streams, measured
    assert table["model"].iloc[0] == "Qwen/Qwen3-8B"
    assert list(table["throughput_tokens_per_s"]) == [812.5, 2480.0, 4020.0]


def test_inference_perf_stages():
    table = import_results(sorted(FIX.glob("inference_perf_stage_*.json")), Context("A100", 2, model="m/x"))
    assert table["batch_size"].iloc[0] == pytest.approx(9.98 * 2.41)  # rate stage: Little's law
    assert table["batch_size"].iloc[1] == 48.0
    assert table["itl_ms"].iloc[0] == pytest.approx(9.1)
    assert (table["num_gpus"] == 2).all() and (table["model"] == "m/x").all()


def test_detect_format():
    assert detect_format({"benchmarks": []}) == "guidellm"
    assert detect_format({"load_summary": {}, "successes": {}}) == "inference-perf"
    assert detect_format({"completed": 1, "output_throughput": 2}) == "vllm"
    assert detect_format([1, 2]) is None


@pytest.mark.parametrize("name,fragments", [
    ("vllm_bad_throughput.json", ["vllm_bad_throughput.json", "'output_throughput'", "not a number"]),
    ("inference_perf_missing_output_len.json", ["'successes.output_len.mean'", "missing"]),
    ("truncated.json", ["truncated.json", "not valid JSON"]),
])
def test_malformed_files_name_the_file_and_field(name, fragments):
    with pytest.raises(BenchmarkError) as err:
        import_results([FIX / name], CTX)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_missing_model_and_unknown_format(tmp_path):
    with pytest.raises(BenchmarkError, match="names no model"):
        import_results([FIX / "inference_perf_stage_1_lifecycle_metrics.json"], CTX)
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(BenchmarkError, match="not a result file"):
        import_results([other], CTX)
    with pytest.raises(BenchmarkError, match="unknown format"):
        import_results([other], CTX, fmt="locust")


def test_vllm_bench_serve_without_e2el_derives_request_latency_and_says_so():
    # `vllm bench serve` leaves e2el out unless --percentile-metrics names it.
    table = import_results([FIX / "vllm_bench_serve_no_e2el.json"], CTX)
    latency = (61.0 + 14.5 * (128 - 1)) / 1000
    assert table["e2e_latency_s"].iloc[0] == pytest.approx(latency)
    assert table["batch_size"].iloc[0] == pytest.approx(11.57 * latency)
    assert "TTFT + TPOT" in table["batch_semantics"].iloc[0]
    assert table["model"].iloc[0] == "Qwen/Qwen3-8B"


def test_vllm_rate_run_without_any_latency_says_how_to_rerun(tmp_path):
    import json

    data = json.loads((FIX / "vllm_bench_serve_no_e2el.json").read_text())
    for key in ("mean_tpot_ms", "mean_e2el_ms"):
        data.pop(key, None)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BenchmarkError, match="--percentile-metrics"):
        import_results([path], CTX)


def test_inference_perf_current_report_uses_prompt_tokens_and_server_output_tokens():
    table = import_results([FIX / "inference_perf_current_stage_0_lifecycle_metrics.json"],
                           Context("H100", model="m/x"))
    row = table.iloc[0]
    assert row["input_tokens"] == 512.0 and row["output_tokens"] == 128.0  # output_tokens, not output_len
    assert row["batch_size"] == 64.0 and row["throughput_tokens_per_s"] == 5012.0
    assert row["itl_ms"] == pytest.approx(11.9) and row["ttft_ms"] == pytest.approx(85.0)


def test_inference_perf_stage_without_successes_is_refused(tmp_path):
    import json

    data = json.loads((FIX / "inference_perf_current_stage_0_lifecycle_metrics.json").read_text())
    data["successes"] = {"count": 0, "latency": {}, "throughput": {}}
    path = tmp_path / "stage_0_lifecycle_metrics.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BenchmarkError, match="no successful requests"):
        import_results([path], Context("H100", model="m/x"))


def test_guidellm_0_4_report():
    table = import_results([FIX / "guidellm_0_4_benchmarks.json"], CTX)
    assert list(table["batch_size"]) == [4.0, 16.0]
    assert list(table["throughput_tokens_per_s"]) == [896.0, 3120.0]
    assert (table["model"] == "meta-llama/Llama-3.1-8B-Instruct").all()
    assert table["itl_ms"].iloc[1] == pytest.approx(4.95)
    assert table["config_id"].nunique() == 1
