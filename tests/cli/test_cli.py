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
    (["--accelerators", "0"], "--accelerators must be"),
    (["--input-tokens", "0.5"], "--input-tokens (mean tokens per request) must lie"),
    (["--max-replicas", "0"], "--max-replicas must be at least --min-replicas"),
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


CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "model_configs"


def test_several_accelerators_compare_in_one_table(run, model_file):
    argv = [a for a in PLAN]
    argv[argv.index("H100")] = "H100,B200,A100:4"
    out = run(*argv, "--model-file", model_file, "--output", "json", check=0)
    doc = json.loads(out.stdout)
    rows = doc["comparison"]
    assert [(r["deployment"]["accelerator"], r["deployment"]["accelerators"]) for r in rows] == [
        ("H100", 1), ("B200", 1), ("A100", 4)]
    assert all(r["evidence"]["basis"] in {"benchmarked", "related", "guess"} for r in rows)
    assert doc["schema_version"] == 1 and doc["objectives"]["max_itl_ms"] == 50
    table = run(*argv, "--model-file", model_file, check=0).stdout
    assert table.count("\n") >= 4 and "A100" in table and "basis" in table


def test_a_model_and_accelerator_the_catalog_lacks_from_config_and_flags(run, model_file):
    """A new accelerator by its specs and a model by its config.json: planned, and marked a guess
    with what to benchmark next."""
    argv = ["plan", "--model", "acme/Qwen3-30B-A3B-finetune", "--model-config", CONFIGS / "qwen3-30b-a3b.json",
            "--accelerator", "ZX-1", "--accelerator-tflops", "800", "--accelerator-bandwidth-tbps", "4",
            "--accelerator-memory-gb", "128", "--input-tokens", "1000", "--output-tokens", "200",
            "--demand-tokens-per-second", "10000", "--model-file", model_file, "--output", "json"]
    out = run(*argv)
    assert out.returncode in (0, 3), out.stderr
    doc = json.loads(out.stdout)
    assert doc["evidence"]["basis"] == "guess" and "ZX-1" in doc["evidence"]["why"]
    assert doc["evidence"]["benchmark_next"]["batch_sizes"][0] == 1
    assert "vllm bench serve" in doc["evidence"]["benchmark_next"]["how"]
    table = run(*argv[:-2]).stdout
    assert "basis: GUESS" in table and "benchmark this next" in table
    # Only some specs of an accelerator the catalog lacks: refused, naming the flags.
    partial = argv[: argv.index("--accelerator-bandwidth-tbps")] + argv[argv.index("--input-tokens"):]
    out = run(*partial)
    assert out.returncode == 2 and "--accelerator-bandwidth-tbps" in out.stderr


def test_catalog_files_extend_the_catalog_and_bad_ones_are_named(run, model_file, tmp_path):
    acc = tmp_path / "acc.csv"
    acc.write_text("name,peak_bf16_dense_tflops,memory_bandwidth_tbps,memory_gb,price_per_hour_usd\n"
                   "MyChip,500,2.5,96,1.1\n")
    models = tmp_path / "models.csv"
    models.write_text("model,params_b\nacme/llama-ft-8b,8.0\n")
    argv = ["predict", "--model", "acme/llama-ft-8b", "--accelerator", "MyChip", "--catalog", acc,
            "--catalog", models, "--batch", "8,64", "--model-file", model_file, "--output", "json"]
    points = json.loads(run(*argv, check=0).stdout)["points"]
    assert len(points) == 2 and all(p["throughput"] > 0 for p in points)
    acc.write_text("name,peak_bf16_dense_tflops,memory_bandwidth_tbps,memory_gb\nMyChip,500,-2,96\n")
    out = run(*argv)
    assert out.returncode == 2 and "acc.csv, row 2, column 'memory_bandwidth_tbps'" in out.stderr
    acc.write_text("chip,tflops\nx,1\n")
    out = run(*argv)
    assert out.returncode == 2 and "needs a 'name' column" in out.stderr


def test_goodput_in_vllm_words(run, model_file):
    argv = list(PLAN) + ["--model-file", model_file, "--output", "json", "--goodput", "ttft:2000,tpot:60"]
    argv[argv.index("--max-itl-ms"):argv.index("--max-itl-ms") + 2] = []
    out = run(*argv)
    assert out.returncode in (0, 3), out.stderr
    doc = json.loads(out.stdout)
    assert doc["objectives"]["max_ttft_ms"] == 2000 and doc["objectives"]["max_tpot_ms"] == 60
    assert doc["objectives"]["statistic"] == "p95"  # two SLOs at a 90% share: 5% misses each
    assert any("not validated" in a for a in doc["approximations"])
    out = run(*argv[:-1], "ttft=2000")
    assert out.returncode == 2 and "--goodput" in out.stderr


def test_measurements_narrow_the_interval_and_raise_confidence(run, model_file, tmp_path):
    base = ["predict", "--model", "Qwen/Qwen3-8B", "--accelerator", "H100", "--input-tokens", "1024",
            "--output-tokens", "256", "--batch", "16,64", "--model-file", model_file, "--output", "json"]
    before = json.loads(run(*base, check=0).stdout)["points"]
    measured = tmp_path / "m.csv"
    measured.write_text("batch_size,throughput_tokens_per_s\n" + "\n".join(
        f"{p['batch_size']:g},{p['throughput'] * 1.1:.1f}" for p in before) + "\n")
    after = json.loads(run(*base, "--measured", measured, check=0).stdout)["points"]
    for b, a in zip(before, after):
        assert (a["upper"] - a["lower"]) / a["throughput"] < (b["upper"] - b["lower"]) / b["throughput"]
        assert a["confidence"] >= b["confidence"]
    measured.write_text("batch,thpt\n1,2\n")
    out = run(*base, "--measured", measured)
    assert out.returncode == 2 and "lacks column 'batch_size'" in out.stderr


def test_verbose_anywhere_and_shell_completion(run, model_file):
    out = run("catalog", "accelerators", "-v", check=0)
    assert "H100" in out.stdout
    script = run("completion", "bash", check=0).stdout
    assert "--max-ttft-ms" in script and "catalog" in script


def test_every_flag_has_help_and_numeric_flags_say_their_unit_or_default():
    import argparse

    from ala.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"ala {name} {action.option_strings[0]} has no help"
            if action.type in (int, float) and action.default is None:
                assert any(u in action.help for u in ("ms", "seconds", "TFLOPS", "TB/s", "GB", "USD", "tokens",
                                                       "requests", "cap", "(0, 1)")), (name, action.option_strings)


def test_a_model_only_your_rows_know_is_answered_by_the_model_fitted_on_them(run, tmp_path):
    """Rows may carry a model's size: fit uses it, and the saved model answers queries naming it."""
    csv = tmp_path / "mine.csv"
    rows = [("acme/Secret-Model", b, y) for b, y in ((1, 50), (8, 350), (32, 1100), (64, 1800))]
    csv.write_text("model,hardware,num_gpus,framework,precision,input_tokens,output_tokens,batch_size,"
                   "throughput_tokens_per_s,params_b\n" +
                   "".join(f"{m},H100,1,vLLM,bfloat16,512,256,{b},{y},13\n" for m, b, y in rows))
    saved = tmp_path / "mine.ala"
    run("fit", "--data", csv, "--out", saved, "--seed", "1", check=0)
    out = run("predict", "--model", "acme/Secret-Model", "--accelerator", "H100", "--input-tokens", "512",
              "--output-tokens", "256", "--batch", "8,32", "--model-file", saved, "--output", "json", check=0)
    points = json.loads(out.stdout)["points"]
    assert all(p["lower"] < p["throughput"] < p["upper"] for p in points)


def test_evaluate_shots_reach_task_d_and_the_saved_header(monkeypatch, tmp_path):
    """Unit: `--shots` is what task D reveals, and a saved report says how it was run; a
    count below 1 is refused by the real command, naming the option."""
    from ala import cli, evaluation

    seen = {}
    monkeypatch.setattr(evaluation, "run", lambda table, **kw: seen.update(kw) or {})
    out = tmp_path / "acc.md"
    assert cli.main(["evaluate", "--tasks", "D", "--shots", "5", "8", "--save", str(out)]) == 0
    assert seen["shots"] == [5, 8] and seen["tasks"] == "D"
    assert "--tasks D --shots 5 8`" in out.read_text()
    assert cli.main(["evaluate", "--tasks", "D", "--save", str(out)]) == 0
    assert seen["shots"] == [1, 2, 3] and "--shots" not in out.read_text()


def test_evaluate_saves_the_markdown_when_stdout_is_json(monkeypatch, tmp_path, capsys):
    """Unit: `--output json --save F` prints JSON and still writes the markdown report to F
    (it used to return before saving, so a long run's tables were lost)."""
    import json

    from ala import cli, evaluation

    results = {"D k=1": {"ALA": evaluation.Predictions()}}
    results["D k=1"]["ALA"].add([100.0, 200.0], [110.0, 190.0], ["argonne", "argonne"], [90.0, 150.0],
                                [120.0, 230.0], [0.9, 0.8])
    monkeypatch.setattr(evaluation, "run", lambda table, **kw: results)
    out = tmp_path / "acc.md"
    assert cli.main(["evaluate", "--tasks", "D", "--output", "json", "--save", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["D k=1"]["ALA"]["made"] == 2
    saved = out.read_text()
    assert saved.startswith("# Accuracy benchmark") and "### Task D k=1" in saved and "7.5%" in saved


def test_evaluate_refuses_a_shot_count_below_one(run):
    out = run("evaluate", "--shots", "0")
    assert out.returncode == 2 and "--shots: 0 is below 1" in out.stderr
