"""The ``ala`` command line: plan capacity, predict curves, explain, fit, import, evaluate.

Exit status: 0 success, 2 bad input (named on stderr), 1 internal error.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, evaluation
from .benchmarks import BenchmarkError, bundled_paths, read_benchmarks
from .catalog import Catalog, UnknownAcceleratorError, UnknownModelError
from .importers import READERS, Context, import_results
from .persistence import ModelFileError, load_model, save_model
from .estimator import ALA
from .modelcache import cached_model
from .planner import Demand, Deployment, Objectives, Policy, batch_grid, plan

EXAMPLES = """examples:
  ala plan --model meta-llama/Llama-3.1-8B-Instruct --accelerator H100 --accelerators 1 \\
      --engine vllm --input-tokens 1024 --output-tokens 256 \\
      --demand-tokens-per-second 50000 --max-itl-ms 50 --confidence 0.9
  ala predict --model Qwen/Qwen3-32B --accelerator B200 --output-tokens 512 --batch 8,64,256
  ala explain --model meta-llama/Llama-2-70b-hf --accelerator A100 --accelerators 4
  ala import results/*.json --accelerator H100 --accelerators 1 --out mine.csv
  ala fit --data mine.csv --out mine.ala && ala plan --model-file mine.ala ...
  ala evaluate --save docs/accuracy.md
"""


class InputError(Exception):
    """Bad input from the user: exit status 2."""


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.done = max(total, 1), label, 0
        self.tty = sys.stderr.isatty()

    def step(self, message: str) -> None:
        self.done += 1
        filled = int(30 * min(self.done, self.total) / self.total)
        bar = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {self.label}: {message}"
        print(("\r" + bar) if self.tty else bar, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


#: Version of `ala plan --output json`'s layout (bumped when a field changes meaning or goes).
PLAN_SCHEMA_VERSION = 1
#: Exit status of `ala plan` when no configuration meets the objectives (outcome
#: ``infeasible``) or the data cannot say (``insufficient_data``): the plan is still printed.
EXIT_NO_PLAN = 3


def _say(message: str) -> None:
    print(f"[ala {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ arguments
def _deployment_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("deployment")
    g.add_argument("--model", required=True, help="Hugging Face model id, e.g. meta-llama/Llama-3.1-8B-Instruct")
    g.add_argument("--accelerator", required=True, help="accelerator from the catalog, e.g. H100, MI300X, B200")
    g.add_argument("--accelerators", type=int, default=1, help="accelerators per replica (default 1)")
    g.add_argument("--engine", default="vllm", help="serving engine: vllm, tensorrt-llm, sglang, tgi (default vllm)")
    g.add_argument("--precision", default="bfloat16", help="weight precision: bfloat16, fp8, mxfp4, ... (default bfloat16)")
    g.add_argument("--input-tokens", type=float, help="mean input (prompt) tokens per request")
    g.add_argument("--output-tokens", type=float, help="mean output tokens per request")
    g.add_argument("--workload", default="unspecified", help="workload kind (chat, code, reasoning, ...)")


def _model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model-file", help="a model saved by 'ala fit' (default: the model fitted on the bundled "
                                        "data, cached after the first call)")
    g.add_argument("--data", nargs="*", default=[], help="extra benchmark CSV files to fit on")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--no-cache", action="store_true",
                   help="fit afresh and do not read or write the cached model ($ALA_CACHE_DIR, else "
                        "$XDG_CACHE_HOME/ala, else ~/.cache/ala)")
    p.add_argument("--output", choices=["table", "json"], default="table", help="output format")


def _deployment(args) -> Deployment:
    """The deployment asked about, its names checked against the catalog first: a typo is
    reported in about a second, with the closest known names, before any model is loaded."""
    if not args.data:  # rows of the user's own files may name what the catalog lacks
        catalog = Catalog.load()
        catalog.model(args.model)
        catalog.accelerator(args.accelerator)
    try:
        return Deployment(args.model, args.accelerator, args.accelerators, args.engine, args.precision,
                          args.input_tokens, args.output_tokens, args.workload)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _load(args) -> ALA:
    if args.model_file:
        if args.data:
            raise InputError("give --model-file or --data, not both")
        _say(f"loading {args.model_file} ...")
        return load_model(args.model_file)
    return cached_model(bundled_paths() + [Path(p) for p in args.data], args.seed, not args.no_cache, _say)


def _batches(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--batch: {text!r} is not a comma-separated list of numbers") from None
    if not values or any(not np.isfinite(v) or v <= 0 for v in values):
        raise InputError("--batch: batch sizes must be positive numbers")
    return values


def _plot(path: str, batches, frame: pd.DataFrame, title: str, point: tuple | None = None) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'ala[plot]'") from None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.fill_between(batches, frame["lower"], frame["upper"], alpha=0.25, label="interval")
    ax.plot(batches, frame["point"], lw=2, label="predicted throughput")
    if point is not None:
        ax.plot([point[0]], [point[1]], "o", ms=9, color="C3", label=f"chosen batch {int(point[0])}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size (concurrent sequences)")
    ax.set_ylabel("generated tokens/s per replica")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    _say(f"wrote {path}")


# ------------------------------------------------------------------ commands
def cmd_plan(args) -> int:
    deployment = _deployment(args)
    if (args.demand_tokens_per_second is None) == (args.demand_requests_per_second is None):
        raise InputError("give one of --demand-tokens-per-second and --demand-requests-per-second")
    try:
        demand = Demand(args.demand_tokens_per_second, args.demand_requests_per_second)
        demand.tokens_per_s(deployment)
        objectives = Objectives(args.max_itl_ms, args.max_request_latency_s)
        policy = Policy(args.confidence, args.min_replicas, args.max_replicas, args.headroom,
                        args.price_per_hour, args.max_batch)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    model = _load(args)
    try:
        result = plan(model, deployment, demand, objectives, policy, alternatives=not args.no_alternatives)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if args.plot:
        grid = batch_grid(policy.max_batch)
        frame = model.predict_interval(deployment.query(grid), confidence_level=policy.confidence_level)
        chosen = None if result.batch_size is None else (result.batch_size, result.throughput_per_replica["value"])
        _plot(args.plot, grid, frame, f"{deployment.model} on {deployment.accelerators}x "
              f"{deployment.accelerator} ({deployment.engine})", chosen)
    if args.output == "json":
        out = {"schema_version": PLAN_SCHEMA_VERSION, **result.to_dict(),
               "objectives": asdict(objectives), "policy": asdict(policy)}
        print(json.dumps(out, indent=2, default=float))
    else:
        print(_plan_text(result))
    return 0 if result.outcome == "ok" else EXIT_NO_PLAN


def _plan_text(p) -> str:
    d = p.deployment
    lines = [f"{d['model']} on {d['accelerators']}x {d['accelerator']} ({d['engine']}, {d['precision']}); "
             f"demand {p.demand_tokens_per_s:,.0f} output tokens/s", f"outcome: {p.outcome}"]
    if p.batch_size is not None:
        t = p.throughput_per_replica
        lines.append(f"batch size: {p.batch_size} (limited by {p.batch_limited_by})")
        lines.append(f"throughput per replica: {t['value']:,.0f} tokens/s "
                     f"[{t['lower']:,.0f}, {t['upper']:,.0f}] @{t['confidence_level']:g}; confidence {p.confidence:.2f}")
        lines.append(f"inter-token latency: {p.latency['itl_ms']:.1f} ms (conservative)"
                     + ("" if p.latency["request_latency_s"] is None else
                        f"; request latency {p.latency['request_latency_s']:.2f} s"))
    if p.replicas:
        r = p.replicas
        lines.append(f"replicas: {r['target']} (bounds {r['lower_bound']}-{r['upper_bound']}, uncapped {r['uncapped']})")
    if p.cost:
        c = p.cost
        per_m = c["per_million_output_tokens"]
        lines.append(f"cost: ${c['per_hour']:,.2f}/hour" + ("" if per_m is None else f", ${per_m:.3f} per million "
                     f"output tokens") + f" (price {c['price_source']})")
    lines += [f"  - {r}" for r in p.reasons]
    if p.alternatives:
        lines.append("alternatives (cheapest first):")
        lines.append(f"  {'accelerator':<14} {'n':>2} {'batch':>6} {'replicas':>8} {'$/M tok':>8} {'conf':>5}")
        for a in p.alternatives:
            lines.append(f"  {a['accelerator']:<14} {a['accelerators']:>2} {a['batch_size']:>6} {a['replicas']:>8} "
                         f"{a['cost_per_million_output_tokens']:>8.3f} {a['confidence']:>5.2f}")
    return "\n".join(lines)


def cmd_predict(args) -> int:
    deployment = _deployment(args)
    batches = _batches(args.batch)
    model = _load(args)
    out = model.predict_interval(deployment.query(batches), confidence_level=args.confidence)
    if args.plot:
        grid = batch_grid(int(max(batches)) if max(batches) >= 2 else 2)
        _plot(args.plot, grid, model.predict_interval(deployment.query(grid), confidence_level=args.confidence),
              f"{deployment.model} on {deployment.accelerators}x {deployment.accelerator}")
    if args.output == "json":
        print(json.dumps({"confidence_level": args.confidence, "points": [
            {"batch_size": b, "throughput": r.point, "lower": r.lower, "upper": r.upper,
             "confidence": r.confidence} for b, r in zip(batches, out.itertuples())]}, indent=2))
        return 0
    print(f"{args.model} on {args.accelerators}x {args.accelerator} ({args.engine}, {args.precision}); "
          f"{args.confidence:.0%} intervals of generated tokens/s")
    print(f"{'batch':>7} {'predicted':>11} {'lower':>11} {'upper':>11} {'confidence':>10}")
    for b, r in zip(batches, out.itertuples()):
        print(f"{b:>7g} {r.point:>11,.0f} {r.lower:>11,.0f} {r.upper:>11,.0f} {r.confidence:>10.2f}")
    return 0


def cmd_explain(args) -> int:
    deployment = _deployment(args)
    model = _load(args)
    info = model.explain(deployment.query([args.batch_size]))[0]
    if args.output == "json":
        print(json.dumps(info, indent=2, default=float))
        return 0
    p = info["parameters"]
    print(f"curve: thpt(bb) = {p['c']:,.1f} - {p['a']:,.1f} * exp(-{p['b']:.5f} * bb)")
    print(f"from: {info['source']}")
    print(f"similarity to observed workloads: {info['similarity']:.2f}; expected |log error|: "
          f"{info['expected_error']:.3f}; live points: {info['live_points']}")
    print("nearest observed configurations:")
    for n in info["nearest"]:
        print(f"  {n['similarity']:.3f}  {n['model']} on {n['num_gpus']}x {n['hardware']} ({n['workload']})")
    return 0


def cmd_fit(args) -> int:
    paths = ([] if args.no_bundled else bundled_paths()) + [Path(p) for p in args.data]
    if not paths:
        raise InputError("nothing to fit on: give --data or drop --no-bundled")
    table = read_benchmarks(paths)
    _say(f"fitting on {table['config_id'].nunique()} curves ({len(table)} rows) ...")
    try:
        model = ALA(random_state=args.seed).fit(table)
    except ValueError as exc:  # too little data is the user's input, not our bug
        raise InputError(str(exc)) from None
    save_model(model, args.out, fitted=not args.compact)
    summary = {"out": str(args.out), "curves": int(len(model.configs_)), "excluded": len(model.excluded_),
               "fit_seconds": round(model.fit_seconds_, 2)}
    print(json.dumps(summary) if args.output == "json" else
          f"saved {args.out}: {summary['curves']} curves, {summary['excluded']} excluded, "
          f"fit in {summary['fit_seconds']}s")
    return 0


def cmd_import(args) -> int:
    ctx = Context(args.accelerator, args.accelerators, args.precision, args.engine, args.model, args.workload)
    table = import_results(args.files, ctx, args.format)
    columns = [c for c in ("source", "config_id", "model", "hardware", "num_gpus", "framework", "precision",
                           "workload", "input_tokens", "output_tokens", "batch_size", "batch_semantics",
                           "throughput_tokens_per_s", "itl_ms", "ttft_ms", "e2e_latency_s") if c in table]
    text = table[columns].to_csv(index=False)
    if args.out:
        Path(args.out).write_text(text)
        _say(f"wrote {len(table)} row(s) to {args.out}")
    else:
        print(text, end="")
    return 0


def cmd_evaluate(args) -> int:
    table = read_benchmarks(bundled_paths() + [Path(p) for p in args.data])
    start = time.perf_counter()
    params = {"n_anneal": 8, "n_estimators": 60} if args.quick else {}
    n_steps = args.folds * (("B" in args.tasks) + ("C" in args.tasks) + bool({"A", "D"} & set(args.tasks)))
    bar = Progress(n_steps, "folds")
    results = evaluation.run(table, folds=args.folds, random_state=args.seed, tasks=args.tasks,
                             ala_params=params, progress=bar.step)
    bar.close()
    elapsed = time.perf_counter() - start
    sources = {"all": None, "Argonne": "argonne", "ML.ENERGY": "ml-energy"}
    if args.output == "json":
        print(json.dumps({task: {m: evaluation.summarise(p) for m, p in methods.items()}
                          for task, methods in results.items()}, indent=2, default=float))
        return 0
    text = evaluation.report(results, sources)
    print(text)
    print(f"total {elapsed:.0f}s")
    if args.save:
        header = (f"# Accuracy benchmark\n\nGenerated by `ala evaluate --folds {args.folds} --seed {args.seed}"
                  f"{' --quick' if args.quick else ''}` on the bundled data; the whole run (every method, "
                  f"every task) took {elapsed:.0f} s on this machine. APE is the absolute percentage error of "
                  f"generated tokens/s; coverage and width are those of the nominal 90% interval (width = "
                  f"(upper - lower) / point); Spearman is between the confidence score and the absolute "
                  f"error (negative: higher confidence, smaller error). Fit and predict seconds add up "
                  f"over the folds. Protocol and baselines: see docs/method.md.\n\n")
        Path(args.save).write_text(header + text + "\n")
        _say(f"saved {args.save}")
    return 0


def cmd_catalog(args) -> int:
    """What the catalog knows: models or accelerators, with the facts used and their source."""
    catalog = Catalog.load()
    if args.what == "models":
        frame = catalog.models[["model", "params_b", "active_params_b", "architecture", "source"]]
    else:
        frame = catalog.accelerators[["name", "aliases", "vendor", "memory_gb", "peak_bf16_dense_tflops",
                                      "memory_bandwidth_tbps", "source"]]
    if args.output == "json":
        print(frame.to_json(orient="records", indent=2))
        return 0
    print(frame.fillna("").to_string(index=False))
    return 0


def cmd_bench(args) -> int:
    """Speed figures: fit, batched prediction and plans, each beside a baseline in the same run."""
    table = read_benchmarks(bundled_paths())
    t0 = time.perf_counter()
    model = ALA(random_state=args.seed).fit(table)
    fit_s = time.perf_counter() - t0
    from sklearn.ensemble import HistGradientBoostingRegressor

    from .features import row_features

    feats = model.features_.loc[model.points_["config_id"]]
    X = row_features(feats, model.points_["batch_size"].to_numpy(float))
    t0 = time.perf_counter()
    HistGradientBoostingRegressor(max_iter=300, random_state=0).fit(X, np.log(model.points_["throughput"]))
    gbr_s = time.perf_counter() - t0
    configs = model.configs_.reset_index()
    rows = configs.loc[configs.index.repeat(8)].reset_index(drop=True)
    rows["batch_size"] = np.tile([1, 4, 8, 16, 32, 64, 128, 256], len(configs))
    rows = rows.drop(columns=["config_id"])
    t0 = time.perf_counter()
    model.predict_interval(rows)
    pred_ms = 1000 * (time.perf_counter() - t0) / len(rows)
    deployments = []
    for _, c in configs.iterrows():
        try:
            deployments.append(Deployment(c["model"], c["hardware"], int(c["num_gpus"]), c["framework"], c["precision"],
                                   None if not np.isfinite(c["input_tokens"]) else c["input_tokens"],
                                   None if not np.isfinite(c["output_tokens"]) else c["output_tokens"],
                                   c["workload"]))
        except ValueError:
            continue
    deployments = deployments[: args.plans] if args.plans > 0 else deployments
    times, outcomes = [], {}
    for dep in deployments:
        t0 = time.perf_counter()
        p = plan(model, dep, Demand(output_tokens_per_s=20000), Objectives(max_itl_ms=100), Policy(),
                 alternatives=False)
        times.append(time.perf_counter() - t0)
        outcomes[p.outcome] = outcomes.get(p.outcome, 0) + 1
    t0 = time.perf_counter()
    plan(model, deployments[0], Demand(output_tokens_per_s=20000), Objectives(max_itl_ms=100))
    alt_ms = 1000 * (time.perf_counter() - t0)
    # Cold (what the first `ala plan` pays: the fit) against warm (every later call: the
    # cached model loaded), each followed by the same plan.
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        saved = save_model(model, Path(folder) / "model.ala", fitted=True)
        t0 = time.perf_counter()
        warm_model = load_model(saved)
        load_s = time.perf_counter() - t0
        plan(warm_model, deployments[0], Demand(output_tokens_per_s=20000), Objectives(max_itl_ms=100))
        warm_s = time.perf_counter() - t0
        size_mb = saved.stat().st_size / 1e6
    cold_s = fit_s + alt_ms / 1000
    figures = {"fit_seconds": round(fit_s, 2), "baseline_gbr_fit_seconds": round(gbr_s, 2),
               "fit_ratio_vs_gbr": round(fit_s / gbr_s, 1),
               "predict_ms_per_query_batched": round(pred_ms, 3), "queries": len(rows),
               "plans": len(times), "plan_ms_median": round(1000 * float(np.median(times)), 1),
               "plan_ms_p95": round(1000 * float(np.quantile(times, 0.95)), 1),
               "plan_with_alternatives_ms": round(alt_ms, 1), "plan_outcomes": outcomes,
               "cold_plan_seconds_fit_then_plan": round(cold_s, 2),
               "warm_plan_seconds_load_then_plan": round(warm_s, 2), "model_load_seconds": round(load_s, 2),
               "warm_over_cold": round(warm_s / cold_s, 3), "saved_model_mb": round(size_mb, 1)}
    print(json.dumps(figures, indent=2) if args.output == "json" else
          "\n".join(f"{k:>32}: {v}" for k, v in figures.items()))
    return 0


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ala", description="Capacity planning for LLM serving: throughput "
                                     "curves with calibrated intervals, batch size and replicas.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library decides")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="recommend batch size and replicas for a demand",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _deployment_args(p)
    g = p.add_argument_group("demand and objectives")
    g.add_argument("--demand-tokens-per-second", type=float, help="output tokens/s to serve")
    g.add_argument("--demand-requests-per-second", type=float, help="requests/s to serve (needs --output-tokens)")
    g.add_argument("--max-itl-ms", type=float, help="maximum inter-token latency (ms)")
    g.add_argument("--max-request-latency-s", type=float, help="maximum request latency (s)")
    g = p.add_argument_group("policy")
    g.add_argument("--confidence", type=float, default=0.9, help="interval level in (0, 1) (default 0.9)")
    g.add_argument("--min-replicas", type=int, default=1)
    g.add_argument("--max-replicas", type=int)
    g.add_argument("--headroom", type=float, default=0.1, help="extra capacity as a fraction (default 0.1)")
    g.add_argument("--price-per-hour", type=float, help="price of one accelerator-hour (default: catalog's indicative price)")
    g.add_argument("--max-batch", type=int, default=1024, help="largest batch to consider (default 1024)")
    g.add_argument("--no-alternatives", action="store_true", help="skip other accelerators")
    p.add_argument("--plot", help="write the curve, its interval and the chosen batch to this PNG/SVG")
    _model_args(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("predict", help="throughput curve with intervals at given batch sizes")
    _deployment_args(p)
    p.add_argument("--batch", default="1,8,16,32,64,128,256", help="comma-separated batch sizes")
    p.add_argument("--confidence", type=float, default=0.9, help="interval level in (0, 1) (default 0.9)")
    p.add_argument("--plot", help="write the curve with its interval band to this PNG/SVG")
    _model_args(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="where a prediction comes from")
    _deployment_args(p)
    p.add_argument("--batch-size", type=float, default=32.0, help="batch size to explain (default 32)")
    _model_args(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("fit", help="fit on benchmark files and save the model")
    p.add_argument("--data", nargs="*", default=[], help="benchmark CSV files (added to the bundled data)")
    p.add_argument("--no-bundled", action="store_true", help="fit on --data alone")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--compact", action="store_true",
                   help="save data and settings only (about 100 kB; loading refits, about 30 s) instead of "
                        "also the fitted state (about 20 MB; loads in about a second under the same library "
                        "versions)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("import", help="convert benchmark tool results (vLLM, GuideLLM, inference-perf) to CSV")
    p.add_argument("files", nargs="+", help="result JSON files")
    p.add_argument("--format", default="auto", choices=["auto", *READERS])
    p.add_argument("--accelerator", required=True, help="accelerator the results were measured on")
    p.add_argument("--accelerators", type=int, default=1, help="accelerators per replica")
    p.add_argument("--precision", default="bfloat16")
    p.add_argument("--engine", help="serving engine (default: from the file, else vLLM)")
    p.add_argument("--model", help="model id when the files do not name it")
    p.add_argument("--workload", default="unspecified")
    p.add_argument("--out", help="CSV file to write (default: stdout)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("evaluate", help="the accuracy benchmark (tasks A-D) beside the baselines")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--tasks", default="ABCD", help="subset of ABCD")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smaller models, for a fast look")
    p.add_argument("--data", nargs="*", default=[], help="extra benchmark CSV files")
    p.add_argument("--save", help="write the markdown tables to this file")
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("catalog", help="list the models or accelerators the catalog knows, with sources")
    p.add_argument("what", choices=["models", "accelerators"])
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_catalog)

    p = sub.add_parser("bench", help="speed figures: fit, prediction and planning times")
    p.add_argument("--plans", type=int, default=0,
                   help="how many bundled configurations to plan (default 0: every one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    confidence = getattr(args, "confidence", None)
    if confidence is not None and not 0 < confidence < 1:
        print("ala: error: --confidence must lie strictly between 0 and 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (InputError, BenchmarkError, ModelFileError, UnknownAcceleratorError, UnknownModelError) as exc:
        print(f"ala: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`ala catalog models | head`): not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the exit status tells internal errors apart
        logging.getLogger(__name__).debug("internal error", exc_info=True)
        print(f"ala: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
