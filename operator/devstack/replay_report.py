"""``ala-operator replay``: run the trace replay for the chosen scenarios and policies,
print the figures (one JSON object per policy, or a table) and optionally write a report
with a plot per scenario."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ala.benchmarks import group_curves, load_benchmarks
from ala.estimator import ALA

from .loadshape import is_load_shape, load_shape, run_shape, shape_scenarios
from .replay import ALA_POLICIES, POLICIES, TRACES, default_scenarios, run_scenario

ALA_POLICIES_SET = set(ALA_POLICIES)

COLUMNS = ("scenario", "scale", "policy", "gpu_hours", "within_objectives", "violation_minutes", "scaling_actions",
           "peak_replicas", "batch", "batch_changes", "live_ape", "live_interval_coverage", "decided_by",
           "skipped_windows")


BUNDLED = {"conv": TRACES / "azure_llm_2023_conv.csv", "code": TRACES / "azure_llm_2023_code.csv",
           "servegen-m-small": TRACES / "servegen_m-small_10min.csv",
           "servegen-m-large": TRACES / "servegen_m-large_10min.csv"}


def _scale(text: str | None, shape: bool):
    """``--scale``: a whole repeat count for a per-request trace; a factor or ``auto`` for a shape."""
    if text is None or (shape and text == "auto"):
        return None
    try:
        value = int(text) if not shape else float(text)
    except ValueError:
        raise ValueError(f"--scale {text!r}: {'a positive number or auto' if shape else 'a whole number'} "
                         f"for this trace") from None
    if not value > 0:
        raise ValueError("--scale must be positive")
    return value


def _scenarios(args):
    """(per-request scenarios, load-shape scenarios with their scale) the arguments choose."""
    traces, shapes = default_scenarios(), shape_scenarios()
    if args.trace:
        path = BUNDLED.get(args.trace, Path(args.trace))
        if not path.exists():
            raise ValueError(f"--trace {args.trace}: no such file (bundled: {', '.join(BUNDLED)})")
        if is_load_shape(path):
            load_shape(path)  # a malformed shape is refused before any fitting
            bundled = [s for s in shapes if s.trace == path]
            traces, shapes = [], bundled or [replace(s, trace=path, name=s.name.replace(
                s.name.split("-llama")[0], path.stem, 1)) for s in shapes]
        else:
            stem = "code" if "code" in path.name else "conv"
            traces = [replace(s, trace=path, name=s.name.replace(s.name.split("-")[0], path.stem, 1))
                      for s in traces if s.name.startswith(stem)]
            shapes = []
    if args.config:
        traces = [s for s in traces if any(s.name.endswith(c) for c in args.config)]
        shapes = [s for s in shapes if any(s.name.endswith(c) for c in args.config)]
    if args.cold_start < 0:
        raise ValueError("--cold-start must not be negative")
    traces = [replace(s, cold_start_s=args.cold_start) for s in traces]
    shapes = [replace(s, cold_start_s=args.cold_start) for s in shapes]
    if args.scale is not None and traces:
        traces = [replace(s, scale=_scale(args.scale, False)) for s in traces]
    return traces, shapes, _scale(args.scale, True) if shapes else None


def main_replay(args) -> int:
    traces, shapes, shape_scale = _scenarios(args)
    policies = tuple(args.policy or POLICIES)
    table = load_benchmarks()
    curves = group_curves(table)
    model = None
    if ALA_POLICIES_SET & set(policies):
        held_out = {s.curve_id for s in traces + shapes}
        print(f"# fitting ALA without the {len(held_out)} true curve(s) ...", flush=True) if args.output == "table" \
            else None
        model = ALA(random_state=0).fit(table[~table["config_id"].isin(held_out)])
    rows, results = [], {}
    runs = [(s, run_scenario(s, policies, model=model, curves=curves)) for s in traces]
    for s, run in runs + [(s, run_shape(s, policies, model=model, curves=curves, scale=shape_scale))
                          for s in shapes]:
        for row, result in run:
            rows.append(row)
            results[(s.name, row["policy"])] = result
            if args.output == "json":
                print(json.dumps(row), flush=True)
            else:
                print("  ".join(f"{k}={row.get(k)}" for k in COLUMNS if row.get(k) is not None), flush=True)
    if args.report:
        write_report(Path(args.report), traces + shapes, rows, results)
    return 0


def write_report(path: Path, scenarios, rows, results) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["| scenario | scale | policy | GPU-hours | vs static | within objectives | violation minutes | "
             "scaling actions | peak replicas | batch (changes) | live APE | live coverage | decided by |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    static = {r["scenario"]: r["gpu_hours"] for r in rows if r["policy"] == "static"}
    for r in rows:
        ratio = f"{r['gpu_hours'] / static[r['scenario']]:.2f}x" if r["scenario"] in static else ""
        decided = ", ".join(f"{k} {v}" for k, v in (r.get("decided_by") or {}).items())
        lines.append(f"| {r['scenario']} | {r['scale']} | {r['policy']} | {r['gpu_hours']:.2f} | {ratio} | "
                     f"{r['within_objectives']:.2%} | {r['violation_minutes']} | {r['scaling_actions']} | "
                     f"{r['peak_replicas']} | {r['batch']} ({r.get('batch_changes', 0)}) | "
                     f"{'' if r.get('live_ape') is None else format(r['live_ape'], '.1%')} | "
                     f"{'' if r.get('live_interval_coverage') is None else format(r['live_interval_coverage'], '.0%')} | "
                     f"{decided} |")
    (path.parent / (path.stem + "-table.md")).write_text("\n".join(lines) + "\n")  # pasted into the report
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    for s in scenarios:
        mine = {policy: result for (name, policy), result in results.items() if name == s.name}
        if not mine:
            continue
        first = next(iter(mine.values()))
        shape = "slot_s" in first.series
        unit = first.series.get("slot_s", 60) / (86400 if shape else 60)
        fig, axes = plt.subplots(3, 1, figsize=(12 if shape else 10, 8), sharex=True)
        demand = first.series["demand_tokens_per_s"]
        axes[0].plot([i * (unit if shape else 1 / 60) for i in range(len(demand))], demand, color="black", lw=0.8)
        axes[0].set_ylabel("requested output tok/s\n(" + ("10-min" if shape else "1-min") + " mean)")
        for policy, result in mine.items():
            reps = result.series["replicas"]
            axes[1].plot([i * (unit if shape else 1 / 60) for i in range(len(reps))], reps, label=policy, lw=0.8)
            viol = result.series["missed_share" if shape else "violations_per_minute"]
            axes[2].plot([i * unit if shape else i for i in range(len(viol))], [100 * v for v in viol], label=policy,
                         lw=0.8)
        axes[1].set_ylabel("replicas" + (" (10-min mean)" if shape else ""))
        axes[1].legend(loc="upper right", fontsize=8)
        axes[2].set_ylabel("% requests missing\nobjectives" + (" (10-min)" if shape else ""))
        axes[2].set_xlabel("day of the shape" if shape else "minute of the trace")
        fig.suptitle(f"{s.name} (scale x{s.scale if not shape else '%.3g' % rows_scale(rows, s.name)}, "
                     f"cold start {s.cold_start_s:.0f} s)")
        fig.tight_layout()
        fig.savefig(path.parent / f"replay-{s.name}.png", dpi=90)
        plt.close(fig)


def rows_scale(rows, name: str):
    return next((r["scale"] for r in rows if r["scenario"] == name), 0)
