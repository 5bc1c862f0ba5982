"""``ala-operator replay``: run the trace replay for the chosen scenarios and policies,
print the figures (one JSON object per policy, or a table) and optionally write a report
with a plot per scenario."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ala.benchmarks import group_curves, load_benchmarks
from ala.estimator import ALA

from .replay import POLICIES, TRACES, default_scenarios, run_scenario

COLUMNS = ("scenario", "scale", "policy", "gpu_hours", "within_objectives", "violation_minutes", "scaling_actions",
           "peak_replicas", "batch", "live_ape", "live_interval_coverage")


def _scenarios(args):
    chosen = default_scenarios()
    if args.trace:
        bundled = {"conv": TRACES / "azure_llm_2023_conv.csv", "code": TRACES / "azure_llm_2023_code.csv"}
        path = bundled.get(args.trace, Path(args.trace))
        if not path.exists():
            raise ValueError(f"--trace {args.trace}: no such file (bundled traces: conv, code)")
        stem = "code" if "code" in path.name else "conv"
        chosen = [replace(s, trace=path, name=s.name.replace(s.name.split("-")[0], path.stem, 1))
                  for s in chosen if s.name.startswith(stem)]
    if args.config:
        chosen = [s for s in chosen if any(s.name.endswith(c) for c in args.config)]
    if args.scale:
        if args.scale < 1:
            raise ValueError("--scale must be at least 1")
        chosen = [replace(s, scale=args.scale) for s in chosen]
    if args.cold_start < 0:
        raise ValueError("--cold-start must not be negative")
    return [replace(s, cold_start_s=args.cold_start) for s in chosen]


def main_replay(args) -> int:
    scenarios = _scenarios(args)
    policies = tuple(args.policy or POLICIES)
    table = load_benchmarks()
    curves = group_curves(table)
    model = None
    if "ala" in policies:
        held_out = {s.curve_id for s in scenarios}
        print(f"# fitting ALA without the {len(held_out)} true curve(s) ...", flush=True) if args.output == "table" \
            else None
        model = ALA(random_state=0).fit(table[~table["config_id"].isin(held_out)])
    rows, results = [], {}
    for s in scenarios:
        for row, result in run_scenario(s, policies, model=model, curves=curves):
            rows.append(row)
            results[(s.name, row["policy"])] = result
            if args.output == "json":
                print(json.dumps(row), flush=True)
            else:
                print("  ".join(f"{k}={row.get(k)}" for k in COLUMNS if row.get(k) is not None), flush=True)
    if args.report:
        write_report(Path(args.report), scenarios, rows, results)
    return 0


def write_report(path: Path, scenarios, rows, results) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["| scenario | scale | policy | GPU-hours | saved vs static | within objectives | violation minutes | "
             "scaling actions | peak replicas | batch | live APE | live coverage |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    static = {r["scenario"]: r["gpu_hours"] for r in rows if r["policy"] == "static"}
    for r in rows:
        saving = f"{1 - r['gpu_hours'] / static[r['scenario']]:+.0%}" if r["scenario"] in static else ""
        lines.append(f"| {r['scenario']} | {r['scale']} | {r['policy']} | {r['gpu_hours']:.2f} | {saving} | "
                     f"{r['within_objectives']:.2%} | {r['violation_minutes']} | {r['scaling_actions']} | "
                     f"{r['peak_replicas']} | {r['batch']} | "
                     f"{'' if r.get('live_ape') is None else format(r['live_ape'], '.1%')} | "
                     f"{'' if r.get('live_interval_coverage') is None else format(r['live_interval_coverage'], '.0%')} |")
    (path.parent / (path.stem + "-table.md")).write_text("\n".join(lines) + "\n")  # pasted into the report
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    for s in scenarios:
        fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
        first = next(results[k] for k in results if k[0] == s.name)
        demand = first.series["demand_tokens_per_s"]
        axes[0].plot([t / 60 for t in range(len(demand))], demand, color="black")
        axes[0].set_ylabel("requested output tok/s\n(1-min mean)")
        for (name, policy), result in results.items():
            if name != s.name:
                continue
            reps = result.series["replicas"]
            axes[1].plot([t / 60 for t in range(len(reps))], reps, label=policy)
            viol = result.series["violations_per_minute"]
            axes[2].plot(range(len(viol)), [100 * v for v in viol], label=policy)
        axes[1].set_ylabel("replicas")
        axes[1].legend(loc="upper right", fontsize=8)
        axes[2].set_ylabel("% requests missing\nobjectives")
        axes[2].set_xlabel("minute of the trace")
        fig.suptitle(f"{s.name} (each request x{s.scale}, cold start {s.cold_start_s:.0f} s)")
        fig.tight_layout()
        fig.savefig(path.parent / f"replay-{s.name}.png", dpi=90)
        plt.close(fig)
