"""The ``ala`` console script, end to end."""

import json
from pathlib import Path

import pytest

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "importers"
PLAN = ["plan", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--accelerator", "H100", "--accelerators", "1",
        "--engine", "vllm", "--input-tokens", "1024", "--output-tokens", "256",
        "--demand-tokens-per-second", "50000", "--max-itl-ms", "50", "--confidence", "0.9"]


def test_readme_main_job_on_the_embedded_data(run):
    """The README's main-job command, as written there, fitting on the bundled data."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert " ".join(PLAN[:3]) in readme.replace("\\\n", " ").replace("  ", " ")
    out = run(*PLAN, "--output", "json", check=0)
    plan = json.loads(out.stdout)
    assert plan["outcome"] == "ok"
    assert {"target", "lower_bound", "upper_bound", "uncapped"} <= set(plan["replicas"])
    assert {"value", "lower", "upper"} <= set(plan["throughput_per_replica"])
    assert 0 <= plan["confidence"] <= 1 and plan["reasons"] and plan["alternatives"]
    assert plan["latency"]["itl_ms"] <= 50
    # The first call fitted and cached the default model; the next one loads it, and
    # answers the same.
    assert "cached at" in out.stderr, out.stderr
    again = run(*PLAN, "--output", "json", check=0)
    assert "loaded the fitted model from" in again.stderr and "fitting" not in again.stderr, again.stderr
    assert json.loads(again.stdout) == plan


def test_unknown_names_fail_before_any_model_is_loaded_with_a_suggestion(run, tmp_path):
    """No model file, no cache: a fit would take half a minute; the names are checked first."""
    argv = list(PLAN)
    argv[argv.index("H100")] = "H10"
    out = run(*argv, "--no-cache", check=2)
    assert "unknown accelerator 'H10' (did you mean 'H100'" in out.stderr and "fitting" not in out.stderr
    argv = list(PLAN)
    argv[argv.index("meta-llama/Llama-3.1-8B-Instruct")] = "meta-llama/Llama-3.1-8B-Instrct"
    out = run(*argv, "--no-cache", check=2)
    assert "did you mean 'meta-llama/Llama-3.1-8B-Instruct'" in out.stderr and "fitting" not in out.stderr


def test_an_objective_nothing_meets_exits_3_with_the_plan_and_its_reasons(run, model_file):
    argv = list(PLAN)
    argv[argv.index("--max-itl-ms") + 1] = "0.01"
    out = run(*argv, "--model-file", model_file, "--output", "json", check=3)
    plan = json.loads(out.stdout)
    assert plan["outcome"] == "infeasible" and plan["reasons"] and plan["schema_version"] == 1
    assert plan["objectives"]["max_itl_ms"] == 0.01 and plan["policy"]["confidence_level"] == 0.9


def test_catalog_lists_what_names_are_checked_against(run):
    models = json.loads(run("catalog", "models", "--output", "json", check=0).stdout)
    assert any(m["model"] == "meta-llama/Llama-3.1-8B-Instruct" and m["source"] for m in models)
    table = run("catalog", "accelerators", check=0).stdout
    assert "H100" in table and "MI300X" in table and "source" in table.splitlines()[0]


def test_version(run):
    from ala import __version__
    assert run("--version", check=0).stdout.strip() == f"ala {__version__}"


def test_plan_table_and_plot(run, model_file, tmp_path):
    png = tmp_path / "plan.png"
    out = run(*PLAN, "--model-file", model_file, "--plot", png, check=0)
    assert "replicas:" in out.stdout and "alternatives" in out.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_and_explain_json(run, model_file):
    out = run("predict", "--model", "Qwen/Qwen3-8B", "--accelerator", "H100", "--output-tokens", "300",
              "--batch", "8,64", "--model-file", model_file, "--output", "json", check=0)
    points = json.loads(out.stdout)["points"]
    assert [p["batch_size"] for p in points] == [8, 64]
    assert all(p["lower"] < p["throughput"] < p["upper"] for p in points)
    out = run("explain", "--model", "Qwen/Qwen3-8B", "--accelerator", "H100", "--model-file", model_file,
              "--output", "json", check=0)
    assert set(json.loads(out.stdout)["parameters"]) == {"a", "b", "c"}


@pytest.mark.parametrize("args,fragment", [
    (["--accelerators", "0"], "accelerators must be"),
    (["--accelerator", "TPU-v9"], "unknown accelerator 'TPU-v9'"),
    (["--confidence", "1.5"], "--confidence"),
    (["--demand-requests-per-second", "3"], "give one of"),
])
def test_bad_input_exits_2_naming_the_problem(run, model_file, args, fragment):
    argv = list(PLAN) + ["--model-file", str(model_file)]
    for i in range(0, len(args), 2):
        if args[i] in argv:
            argv[argv.index(args[i]) + 1] = args[i + 1]
        else:
            argv += args[i:i + 2]
    out = run(*argv)
    assert out.returncode == 2 and fragment in out.stderr


def test_malformed_data_file_exits_2(run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("model,hardware,num_gpus,framework,precision,batch_size,throughput_tokens_per_s\n"
                   "m,H100,1,vLLM,fp8,8,-3\n")
    out = run("fit", "--data", bad, "--out", tmp_path / "x.ala")
    assert out.returncode == 2 and "bad.csv, row 2, column 'throughput_tokens_per_s'" in out.stderr
    out = run(*PLAN, "--model-file", tmp_path / "absent.ala")
    assert out.returncode == 2 and "no such file" in out.stderr


def test_import_then_fit_reports_too_little_data(run, tmp_path):
    csv = tmp_path / "mine.csv"
    run("import", FIX / "vllm_c16.json", FIX / "vllm_c64.json", "--accelerator", "H100", "--out", csv, check=0)
    assert csv.read_text().count("\n") == 3
    out = run("fit", "--data", csv, "--no-bundled", "--out", tmp_path / "m.ala")
    assert out.returncode == 2 and "at least 4 curves" in out.stderr


def test_help_has_examples(run):
    out = run("--help", check=0)
    assert "examples:" in out.stdout and "ala plan" in out.stdout


def test_bench_prints_figures(run):
    out = run("bench", "--plans", "3", "--output", "json", check=0)
    figures = json.loads(out.stdout)
    assert figures["plans"] == 3 and figures["fit_seconds"] > 0
    assert figures["predict_ms_per_query_batched"] > 0 and figures["plan_ms_median"] > 0
    assert 0 < figures["warm_plan_seconds_load_then_plan"] and figures["warm_over_cold"] > 0
