"""The ``ala`` command line: plan capacity, predict curves, explain, fit, import, evaluate.

Exit status: 0 success, 2 bad input (named on stderr), 1 internal error.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
import json
import logging
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, evaluation
from .benchmarks import BenchmarkError, bundled_paths, group_curves, read_benchmarks
from .catalog import (Catalog, CatalogFileError, UnknownAcceleratorError, UnknownModelError, accelerator_row,
                      model_from_config, precision_from_name, read_catalog_file)
from .importers import READERS, Context, import_results
from .persistence import ModelFileError, load_model, save_model
from .estimator import ALA
from .modelcache import cached_model
from .planner import Demand, Deployment, Objectives, Policy, batch_grid, plan
from .sources import load_held_out

EXAMPLES = """examples:
  ala plan --model meta-llama/Llama-3.1-8B-Instruct --accelerator H100 --accelerators 1 \\
      --engine vllm --input-tokens 1024 --output-tokens 256 \\
      --demand-tokens-per-second 50000 --max-itl-ms 50 --confidence 0.9
  ala predict --model Qwen/Qwen3-32B --accelerator B200 --output-tokens 512 --batch 8,64,256
  ala plan --model Qwen/Qwen3-32B --accelerator H100,B200,MI300X --input-tokens 2000 --output-tokens 300 \\
      --demand-requests-per-second 20 --goodput ttft:500,tpot:40
  ala plan --model my-org/MyModel-13B --model-config config.json --accelerator MI325X \\
      --accelerator-tflops 1307 --accelerator-bandwidth-tbps 6 --accelerator-memory-gb 256 ...
  ala explain --model meta-llama/Llama-2-70b-hf --accelerator A100 --accelerators 4
  ala import results/*.json --accelerator H100 --accelerators 1 --out mine.csv
  ala fit --data mine.csv --out mine.ala && ala plan --model-file mine.ala ...
  ala evaluate --save docs/accuracy.md
"""


class InputError(Exception):
    """Bad input from the user: exit status 2."""


#: The library's field names as the command line spells them, so errors name flags.
FLAG_NAMES = {"accelerators": "--accelerators", "input_tokens": "--input-tokens",
              "output_tokens": "--output-tokens", "confidence_level": "--confidence",
              "min_replicas": "--min-replicas", "max_replicas": "--max-replicas", "headroom": "--headroom",
              "price_per_hour": "--price-per-hour", "max_batch": "--max-batch", "max_itl_ms": "--max-itl-ms",
              "max_tpot_ms": "--max-tpot-ms", "max_ttft_ms": "--max-ttft-ms",
              "max_request_latency_s": "--max-request-latency-s", "output_tokens_per_s": "--demand-tokens-per-second",
              "requests_per_s": "--demand-requests-per-second", "quantile": "--slo-statistic",
              "precision": "--precision"}
_FIELD = re.compile(r"(?<![\w-])(" + "|".join(sorted(FLAG_NAMES, key=len, reverse=True)) + r")(?![\w-])")


#: Outcomes that size replicas (``no_demand`` sizes them for zero demand, saying so).
SIZED = ("ok", "no_demand")

def _flagged(exc: Exception) -> InputError:
    """A library ``ValueError`` as the user's input error, naming flags instead of fields."""
    return InputError(_FIELD.sub(lambda m: FLAG_NAMES[m.group(1)], str(exc)))


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, label: str, lines: bool = True):
        self.total, self.label, self.done = max(total, 1), label, 0
        self.tty = sys.stderr.isatty()
        self.quiet = not (self.tty or lines)  # plain lines only where asked for

    def step(self, message: str) -> None:
        self.done += 1
        if self.quiet:
            return
        filled = int(30 * min(self.done, self.total) / self.total)
        bar = f"[{'#' * filled}{'.' * (30 - filled)}] {min(self.done, self.total)}/{self.total} {self.label}: {message}"
        print(("\r\033[K" + bar) if self.tty else bar, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty and not self.quiet:
            print(file=sys.stderr)


#: Version of `ala plan --output json`'s layout (bumped when a field changes meaning or goes).
PLAN_SCHEMA_VERSION = 1
#: Exit status of `ala plan` when no configuration meets the objectives (outcome
#: ``infeasible``) or the data cannot say (``insufficient_data``): the plan is still printed.
EXIT_NO_PLAN = 3


def _say(message: str) -> None:
    print(f"[ala {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ arguments
class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and adds each flag's default where it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS) and "default" not in text
                and action.option_strings and not isinstance(action.default, list)):
            text += " (default: %(default)s)"
        return text


def _deployment_args(p: argparse.ArgumentParser, compare: bool = False) -> None:
    g = p.add_argument_group("deployment")
    g.add_argument("--model", required=True, metavar="ID",
                   help="Hugging Face model id, e.g. meta-llama/Llama-3.1-8B-Instruct ('ala catalog models' lists "
                        "them; others: --model-config or --catalog)")
    g.add_argument("--accelerator", required=True, metavar="NAME" + ("[,NAME[:N]...]" if compare else ""),
                   help="accelerator from the catalog, e.g. H100, MI300X, B200 ('ala catalog accelerators')"
                        + ("; several, comma-separated, compares them in one table (NAME:N sets that one's count)"
                           if compare else ""))
    g.add_argument("--accelerators", type=int, default=1, metavar="N", help="accelerators per replica")
    g.add_argument("--engine", default="vllm", help="serving engine: vllm, sglang, tensorrt-llm, tgi, ...")
    g.add_argument("--precision", help="weight precision: bfloat16, fp8, int8, mxfp4, int4, ... (default: from a "
                                       "quantisation suffix of the model name, -FP8, -AWQ, ..., else bfloat16)")
    g.add_argument("--input-tokens", type=float, metavar="TOKENS", help="mean input (prompt) tokens per request")
    g.add_argument("--output-tokens", type=float, metavar="TOKENS", help="mean output (generated) tokens per request")
    g.add_argument("--workload", default="unspecified", help="workload kind: chat, code, reasoning, synthetic, ...")
    g.add_argument("--static-batch", action="store_true",
                   help="batch sizes are static offline batches of prompts started together (as in Argonne's "
                        "tables), not a serving engine's concurrent sequences")
    g = p.add_argument_group("catalog (names the bundled catalog lacks)")
    g.add_argument("--catalog", action="append", default=[], metavar="CSV",
                   help="extra catalog file: accelerators (columns name, peak_bf16_dense_tflops, "
                        "memory_bandwidth_tbps, memory_gb) or models (columns model, params_b, ...); repeatable; "
                        "its rows win over the bundled ones")
    g.add_argument("--model-config", metavar="JSON",
                   help="the model's Hugging Face config.json: its size and attention shape are counted from it")
    g.add_argument("--accelerator-tflops", type=float, metavar="TFLOPS",
                   help="dense BF16 peak of one accelerator, in TFLOPS (with the two below: an accelerator the "
                        "catalog lacks, or overrides for one it has)")
    g.add_argument("--accelerator-bandwidth-tbps", type=float, metavar="TB/S", help="memory bandwidth, in TB/s")
    g.add_argument("--accelerator-memory-gb", type=float, metavar="GB", help="memory of one accelerator, in GB")


def _model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model-file", metavar="FILE",
                   help="a model saved by 'ala fit' (default: the model fitted on the bundled data, cached after "
                        "the first call)")
    g.add_argument("--data", nargs="*", default=[], metavar="CSV", help="extra benchmark CSV files to fit on")
    g.add_argument("--measured", metavar="CSV",
                   help="your measurements of this deployment (columns batch_size, throughput_tokens_per_s in "
                        "output tokens/s per replica, optionally itl_ms): they update its curve and narrow its "
                        "interval; measured ITL corrects the latency objectives")
    g.add_argument("--seed", type=int, default=0, help="random seed of the fit")
    g.add_argument("--no-cache", action="store_true",
                   help="fit afresh and do not read or write the cached model ($ALA_CACHE_DIR, else "
                        "$XDG_CACHE_HOME/ala, else ~/.cache/ala)")
    _output_arg(p)


def _output_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", choices=["table", "json"], default="table", help="output format")


def _accelerator_list(args) -> list[tuple[str, int]]:
    """``--accelerator H100,B200:2`` as (name, count) pairs; a count defaults to --accelerators."""
    out = []
    for item in str(args.accelerator).split(","):
        name, _, count = item.strip().partition(":")
        if not name:
            raise InputError(f"--accelerator: empty name in {args.accelerator!r}")
        try:
            n = int(count) if count else args.accelerators
        except ValueError:
            raise InputError(f"--accelerator: {item!r}: the count after ':' must be a whole number") from None
        out.append((name, n))
    return out


def _catalog(args) -> Catalog:
    """The bundled catalog (or that of --model-file, which knows the models of the rows it
    was fitted on), extended by --catalog files, --model-config and accelerator specs."""
    catalog = _model_file(args).catalog_ if getattr(args, "model_file", None) else Catalog.load()
    try:
        for path in args.catalog:
            kind, frame = read_catalog_file(path)
            catalog = catalog.extend(**{kind: frame})
        if args.model_config:
            path = Path(args.model_config)
            if not path.exists():
                raise InputError(f"--model-config: {path}: no such file")
            try:
                config = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"--model-config: {path}: not valid JSON ({exc})") from None
            catalog = catalog.extend(models=model_from_config(args.model, config, str(path)))
        specs = (args.accelerator_tflops, args.accelerator_bandwidth_tbps, args.accelerator_memory_gb)
        if any(v is not None for v in specs):
            names = _accelerator_list(args)
            if len(names) > 1:
                raise InputError("--accelerator-tflops/-bandwidth-tbps/-memory-gb describe one accelerator; "
                                 "name one with --accelerator, or put several in a --catalog file")
            name = names[0][0]
            try:
                known = catalog.accelerator(name)
                name = str(known["name"])
                base = (known["peak_bf16_dense_tflops"], known["memory_bandwidth_tbps"], known["memory_gb"])
                specs = tuple(b if v is None else v for v, b in zip(specs, base))
            except UnknownAcceleratorError:
                if any(v is None for v in specs):
                    raise InputError(f"accelerator {name!r} is not in the catalog: give all of --accelerator-tflops, "
                                     f"--accelerator-bandwidth-tbps and --accelerator-memory-gb") from None
                known = None
            row = accelerator_row(name, *specs, vendor="" if known is None else str(known.get("vendor", "")),
                                  price_per_hour=None if known is None else known.get("price_per_hour_usd"),
                                  aliases="" if known is None else str(known.get("aliases", "")))
            catalog = catalog.extend(accelerators=row)
    except CatalogFileError as exc:
        raise _flagged(exc) from None
    return catalog


def _deployments(args) -> tuple[list[Deployment], Catalog]:
    """The deployments asked about, their names checked against the catalog first: a typo is
    reported in about a second, with the closest known names, before any model is loaded."""
    catalog = _catalog(args)
    names = _accelerator_list(args)
    if not args.data:  # rows of the user's own files may name what the catalog lacks
        catalog.model(args.model)
        for name, _ in names:
            catalog.accelerator(name)
    precision = args.precision or precision_from_name(args.model) or "bfloat16"
    try:
        semantics = "static offline batch (ala --static-batch)" if args.static_batch else ""
        return [Deployment(args.model, name, count, args.engine, precision, args.input_tokens,
                           args.output_tokens, args.workload, semantics) for name, count in names], catalog
    except ValueError as exc:
        raise _flagged(exc) from None


def _deployment(args) -> tuple[Deployment, Catalog]:
    deployments, catalog = _deployments(args)
    if len(deployments) > 1:
        raise InputError("--accelerator: name one accelerator here ('ala plan' compares several)")
    return deployments[0], catalog


def _model_file(args) -> ALA:
    """The model of --model-file, loaded once per command."""
    if getattr(args, "_loaded", None) is None:
        if args.data:
            raise InputError("give --model-file or --data, not both")
        _say(f"loading {args.model_file} ...")
        args._loaded = load_model(args.model_file)
    return args._loaded


def _load(args, catalog: Catalog | None = None) -> ALA:
    if args.model_file:
        model = _model_file(args)
    else:
        model = cached_model(bundled_paths() + [Path(p) for p in args.data], args.seed, not args.no_cache, _say,
                             progress=lambda total: Progress(total, "first fit", lines=False))
    if catalog is not None and (args.catalog or args.model_config or args.accelerator_tflops is not None
                                or args.accelerator_bandwidth_tbps is not None
                                or args.accelerator_memory_gb is not None):
        model.use_catalog(catalog)
    return model


def _measured(args, deployment: Deployment) -> pd.DataFrame | None:
    """``--measured`` rows as live points of ``deployment``."""
    if not args.measured:
        return None
    path = Path(args.measured)
    if not path.exists():
        raise InputError(f"--measured: {path}: no such file")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"--measured: {path}: not a CSV file ({exc})") from None
    for column in ("batch_size", "throughput_tokens_per_s"):
        if column not in frame.columns:
            raise InputError(f"--measured: {path} lacks column {column!r} (columns: batch_size, "
                             f"throughput_tokens_per_s = output tokens/s of one replica)")
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"--measured: {path}, row {row + 2}, column {column!r}: {frame[column].iloc[row]!r} is "
                             f"not a positive number")
    if not len(frame):
        raise InputError(f"--measured: {path} has no rows")
    live = deployment.query(frame["batch_size"].to_numpy(float))
    live["throughput_tokens_per_s"] = frame["throughput_tokens_per_s"].to_numpy(float)
    if "itl_ms" in frame.columns:  # optional: the measured inter-token latency, in ms
        live["itl_ms"] = pd.to_numeric(frame["itl_ms"], errors="coerce").to_numpy(float)
    return live


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse names the option on error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def _batches(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--batch: {text!r} is not a comma-separated list of numbers") from None
    if not values or any(not np.isfinite(v) or v <= 0 for v in values):
        raise InputError("--batch: batch sizes must be positive numbers")
    return values


def _plot(path: str, batches, frame: pd.DataFrame, title: str, level: float, point: tuple | None = None,
          measured: pd.DataFrame | None = None, max_itl_ms: float | None = None) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'ala[plot]'") from None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.fill_between(batches, frame["lower"], frame["upper"], alpha=0.25, label=f"{level:.0%} interval")
    ax.plot(batches, frame["point"], lw=2, label="predicted throughput")
    if measured is not None:
        ax.plot(measured["batch_size"], measured["throughput_tokens_per_s"], "s", ms=6, color="k",
                label="your measurements")
    if max_itl_ms is not None:
        # Throughput at which the mean inter-token latency equals the limit: bb / thpt = limit.
        ax.plot(batches, 1000.0 * np.asarray(batches, float) / max_itl_ms, "--", color="C2", lw=1,
                label=f"max ITL {max_itl_ms:g} ms (feasible above)")
    if point is not None:
        ax.plot([point[0]], [point[1]], "o", ms=9, color="C3", label=f"chosen batch {int(point[0])}")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1.15 * float(np.nanmax(frame["upper"])))
    ax.set_xlabel("batch size (concurrent sequences)")
    ax.set_ylabel("generated tokens/s per replica")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    _say(f"wrote {path}")


def _title(d: Deployment) -> str:
    tokens = ", ".join(f"{label} {int(v)} tokens" for label, v in (("in", d.input_tokens), ("out", d.output_tokens))
                       if v is not None)
    return f"{d.model} on {d.accelerators}x {d.accelerator} ({d.engine}, {d.precision}{', ' + tokens if tokens else ''})"


# ------------------------------------------------------------------ commands
def _objectives(args) -> Objectives:
    """Latency objectives from the flags; ``--goodput`` in vLLM's words (``ttft:MS,tpot:MS,e2el:MS``)."""
    limits = {"max_itl_ms": args.max_itl_ms, "max_tpot_ms": args.max_tpot_ms, "max_ttft_ms": args.max_ttft_ms,
              "max_request_latency_s": args.max_request_latency_s}
    quantile = None if args.slo_statistic == "mean" else float(args.slo_statistic[1:]) / 100
    if args.goodput:
        keys = {"ttft": ("max_ttft_ms", 1.0), "tpot": ("max_tpot_ms", 1.0), "e2el": ("max_request_latency_s", 1e-3)}
        given = 0
        for item in args.goodput.split(","):
            key, _, value = item.strip().partition(":")
            if key not in keys:
                raise InputError(f"--goodput: {item!r}: expected ttft:MS, tpot:MS or e2el:MS (vLLM's goodput SLOs)")
            try:
                ms = float(value)
            except ValueError:
                raise InputError(f"--goodput: {item!r}: the limit after ':' must be a number of milliseconds") from None
            name, scale = keys[key]
            if limits[name] is not None:
                raise InputError(f"--goodput {key} and --{name.replace('_', '-')} both set the same objective")
            limits[name] = ms * scale
            given += 1
        if args.slo_statistic != "mean":
            raise InputError("--goodput sets its own percentile from --goodput-share; drop --slo-statistic")
        # Each request must meet every SLO: with k of them, each at 1 - (1 - share) / k
        # keeps the share of good requests at least `share` (union bound).
        quantile = 1 - (1 - args.goodput_share) / given
    try:
        return Objectives(quantile=quantile, **limits)
    except ValueError as exc:
        raise _flagged(exc) from None


def cmd_plan(args) -> int:
    deployments, catalog = _deployments(args)
    if (args.demand_tokens_per_second is None) == (args.demand_requests_per_second is None):
        raise InputError("give one of --demand-tokens-per-second and --demand-requests-per-second")
    if not 0 < args.goodput_share < 1:
        raise InputError("--goodput-share must lie strictly between 0 and 1")
    objectives = _objectives(args)
    try:
        demand = Demand(args.demand_tokens_per_second, args.demand_requests_per_second)
        demand.tokens_per_s(deployments[0])
        policy = Policy(args.confidence, args.min_replicas, args.max_replicas, args.headroom,
                        args.price_per_hour, args.max_batch)
        if objectives.max_ttft_ms is not None and args.input_tokens is None:
            raise ValueError("a time-to-first-token objective (--max-ttft-ms, --goodput ttft:) needs --input-tokens")
        if objectives.max_request_latency_s is not None and args.output_tokens is None:
            raise ValueError("a request-latency objective (--max-request-latency-s, --goodput e2el:) needs "
                             "--output-tokens")
    except ValueError as exc:
        raise _flagged(exc) from None
    if len(deployments) > 1 and args.measured:
        raise InputError("--measured describes one deployment: name one accelerator with it")
    if len(deployments) > 1 and args.plot:
        raise InputError("--plot draws one deployment: name one accelerator with it")
    live = _measured(args, deployments[0])
    model = _load(args, catalog)
    plans = []
    for deployment in deployments:
        try:
            plans.append(plan(model, deployment, demand, objectives, policy,
                              alternatives=len(deployments) == 1 and not args.no_alternatives, live=live))
        except ValueError as exc:
            raise _flagged(exc) from None
    echo = {"objectives": {**asdict(objectives), "statistic": objectives.statistic}, "policy": asdict(policy)}
    if len(plans) > 1:
        if args.output == "json":
            print(json.dumps({"schema_version": PLAN_SCHEMA_VERSION, "comparison": [p.to_dict() for p in plans],
                              **echo}, indent=2, default=float))
        else:
            print(_comparison_text(plans))
        return 0 if any(p.outcome in SIZED for p in plans) else EXIT_NO_PLAN
    result = plans[0]
    if args.plot:
        deployment = deployments[0]
        grid = batch_grid(policy.max_batch)
        frame = model.predict_interval(deployment.query(grid), confidence_level=policy.confidence_level, live=live)
        chosen = None if result.batch_size is None else (result.batch_size, result.throughput_per_replica["value"])
        _plot(args.plot, grid, frame, _title(deployment), policy.confidence_level, chosen, live,
              objectives.max_itl_ms if objectives.quantile is None else None)
    if args.output == "json":
        print(json.dumps({"schema_version": PLAN_SCHEMA_VERSION, **result.to_dict(), **echo}, indent=2,
                         default=float))
    else:
        print(_plan_text(result))
    return 0 if result.outcome in SIZED else EXIT_NO_PLAN


def _plan_text(p) -> str:
    d = p.deployment
    lines = [f"{d['model']} on {d['accelerators']}x {d['accelerator']} ({d['engine']}, {d['precision']}); "
             f"demand {p.demand_tokens_per_s:,.0f} output tokens/s", f"outcome: {p.outcome}"]
    if p.evidence:
        lines.append(f"basis: {p.evidence['basis'].upper() if p.evidence['basis'] == 'guess' else p.evidence['basis']}"
                     f" ({p.evidence['why']})")
        if p.evidence.get("model_facts") not in (None, "catalog"):
            lines.append(f"model facts: {p.evidence['model_facts']}")
    if p.batch_size is not None:
        t = p.throughput_per_replica
        lines.append(f"batch size: {p.batch_size} (limited by {p.batch_limited_by})")
        lines.append(f"throughput per replica: {t['value']:,.0f} tokens/s "
                     f"[{t['lower']:,.0f}, {t['upper']:,.0f}] @{t['confidence_level']:g}; confidence {p.confidence:.2f}")
        lat = p.latency
        text = f"mean latencies (conservative): inter-token {lat['itl_ms']:.1f} ms"
        if lat.get("ttft_ms") is not None:
            text += f"; time to first token ~{lat['ttft_ms']:.0f} ms"
        if lat["request_latency_s"] is not None:
            text += f"; request {lat['request_latency_s']:.2f} s"
        lines.append(text)
        if lat.get("at_statistic"):
            at = dict(lat["at_statistic"])
            lines.append(f"at {at.pop('statistic')}: " + ", ".join(f"{k.removeprefix('max_')} {v:.4g}"
                                                                 for k, v in at.items()))
    if p.memory and p.outcome != "infeasible":
        m = p.memory
        lines.append(f"memory per replica: {m['weights_gb']:.0f} GB of weights in {m['usable_gb']:.0f} GB usable; the KV "
                     f"cache holds {m['max_batch']} sequences at {int((d['input_tokens'] or 1000) + (d['output_tokens'] or 256))}"
                     f" tokens each" + (" (token lengths assumed: give --input-tokens and --output-tokens)"
                                        if m["tokens_assumed"] else ""))
    if p.replicas:
        r = p.replicas
        lines.append(f"replicas: {r['target']} (bounds {r['lower_bound']}-{r['upper_bound']}, uncapped {r['uncapped']})")
    if p.cost:
        c = p.cost
        per_m = c["per_million_output_tokens"]
        lines.append(f"cost: ${c['per_hour']:,.2f}/hour" + ("" if per_m is None else f", ${per_m:.3f} per million "
                     f"output tokens") + f" (price {c['price_source']})")
    lines += [f"  - {r}" for r in p.reasons]
    lines += [f"  ~ {a}" for a in p.approximations]
    nxt = (p.evidence or {}).get("benchmark_next")
    if nxt:
        lines.append(f"benchmark this next: {nxt['configuration']} at batch sizes "
                     f"{', '.join(map(str, nxt['batch_sizes']))}")
        lines.append(f"  {nxt['how']}")
    if p.alternatives:
        lines.append("alternatives (cheapest first; basis: benchmarked, related, or GUESS = never measured):")
        lines.append(f"  {'accelerator':<14} {'n':>2} {'batch':>6} {'replicas':>8} {'$/M tok':>8} {'conf':>5}  basis")
        for a in p.alternatives:
            lines.append(f"  {a['accelerator']:<14} {a['accelerators']:>2} {a['batch_size']:>6} {a['replicas']:>8} "
                         f"{a['cost_per_million_output_tokens']:>8.3f} {a['confidence']:>5.2f}  "
                         f"{a['basis'].upper() if a['basis'] == 'guess' else a['basis']}")
    return "\n".join(lines)


def _comparison_text(plans) -> str:
    d = plans[0].deployment
    lines = [f"{d['model']} ({d['engine']}, {d['precision']}); demand {plans[0].demand_tokens_per_s:,.0f} output "
             f"tokens/s; basis: benchmarked, related, or GUESS = never measured",
             f"{'accelerator':<14} {'n':>2} {'outcome':<17} {'batch':>5} {'replicas':>8} {'tok/s/replica':>13} "
             f"{'lower':>8} {'conf':>5} {'$/hour':>9} {'$/M tok':>8}  basis"]
    num = lambda v, fmt: "-" if v is None else format(v, fmt)
    for p in plans:
        dep, t, c = p.deployment, p.throughput_per_replica or {}, p.cost or {}
        basis = p.evidence["basis"] if p.evidence else ""
        lines.append(f"{dep['accelerator']:<14} {dep['accelerators']:>2} {p.outcome:<17} "
                     f"{num(p.batch_size, 'd'):>5} {num(p.replicas and p.replicas['target'], 'd'):>8} "
                     f"{num(t.get('value'), ',.0f'):>13} {num(t.get('lower'), ',.0f'):>8} "
                     f"{num(p.confidence, '.2f'):>5} {num(c.get('per_hour'), ',.2f'):>9} "
                     f"{num(c.get('per_million_output_tokens'), '.3f'):>8}  "
                     f"{basis.upper() if basis == 'guess' else basis}")
    for p in plans:
        if p.outcome not in SIZED:
            lines.append(f"{p.deployment['accelerator']}: " + "; ".join(p.reasons))
    lines += [f"  ~ {a}" for a in plans[0].approximations]
    return "\n".join(lines)


def cmd_predict(args) -> int:
    deployment, catalog = _deployment(args)
    batches = _batches(args.batch)
    live = _measured(args, deployment)
    model = _load(args, catalog)
    out = model.predict_interval(deployment.query(batches), confidence_level=args.confidence, live=live)
    if args.plot:
        grid = batch_grid(int(max(batches)) if max(batches) >= 2 else 2)
        _plot(args.plot, grid, model.predict_interval(deployment.query(grid), confidence_level=args.confidence,
                                                      live=live),
              _title(deployment), args.confidence, measured=live)
    if args.output == "json":
        print(json.dumps({"confidence_level": args.confidence, "points": [
            {"batch_size": b, "throughput": r.point, "lower": r.lower, "upper": r.upper,
             "confidence": r.confidence} for b, r in zip(batches, out.itertuples())]}, indent=2))
        return 0
    print(f"{_title(deployment)}; {args.confidence:.0%} intervals of generated tokens/s per replica")
    print(f"{'batch':>7} {'predicted':>11} {'lower':>11} {'upper':>11} {'confidence':>10}")
    for b, r in zip(batches, out.itertuples()):
        print(f"{b:>7g} {r.point:>11,.0f} {r.lower:>11,.0f} {r.upper:>11,.0f} {r.confidence:>10.2f}")
    return 0


def cmd_explain(args) -> int:
    deployment, catalog = _deployment(args)
    live = _measured(args, deployment)
    model = _load(args, catalog)
    info = model.explain(deployment.query([args.batch]), live=live)[0]
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
        raise _flagged(exc) from None
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
    asked, revision = args.tasks, _source_revision()  # the code that runs, not what is there at the end
    table = read_benchmarks(bundled_paths() + [Path(p) for p in args.data])
    start = time.perf_counter()
    reproduced = None
    if "R" in args.tasks:
        model = cached_model(bundled_paths() + [Path(p) for p in args.data], args.seed, True, _say)
        reproduced = evaluation.reproduce(model)
        args.tasks = args.tasks.replace("R", "")
    params = {"n_anneal": 8, "n_estimators": 60} if args.quick else {}
    held_out = load_held_out() if {"S", "L", "U", "H"} & set(args.tasks) else None
    ablation = "N" in args.tasks  # repeats the folds of C and M (and runs them if not asked)
    n_steps = args.folds * (("B" in args.tasks) + ("C" in args.tasks or ablation) + ("M" in args.tasks or ablation)
                            + bool({"A", "D"} & set(args.tasks)) + ("U" in args.tasks)) + ("X" in args.tasks)
    if held_out is not None:
        configs = group_curves(pd.concat([table, held_out], ignore_index=True)).configs
        n_steps += sum(len(evaluation.source_folds(configs, lockbox=t == "L")) for t in "SL" if t in args.tasks)
        if "H" in args.tasks:
            n_steps += evaluation.accelerator_folds(configs.set_index("config_id"), Catalog.load()).nunique()
    bar = Progress(n_steps, "folds")
    results = evaluation.run(table, folds=args.folds, random_state=args.seed, tasks=args.tasks, shots=args.shots,
                             ala_params=params, held_out=held_out, progress=bar.step) if args.tasks else {}
    bar.close()
    elapsed = time.perf_counter() - start
    sources = {"all": None, "Argonne": "argonne", "ML.ENERGY": "ml-energy"}
    text = evaluation.report(results, sources) if results else ""
    if reproduced is not None:
        text += ("\n\n## R: every benchmarked curve asked again through the product's query path\n\n"
                 "The model fitted on all bundled data (what `ala plan` loads), each configuration rebuilt as a "
                 "`Deployment` (its batch semantics and parallelism included) and asked at its measured batch "
                 "sizes: an in-sample check that a benchmarked configuration is answered from its measurement "
                 "whichever path asks. Width is that of the 90% interval, relative to the point.\n\n"
                 + evaluation.reproduce_report(reproduced))
    if args.output == "json":
        out = {task: {m: evaluation.summarise(p) for m, p in methods.items()} for task, methods in results.items()}
        if reproduced is not None:
            out["R"] = {"points": len(reproduced), "median_ape": float(reproduced["ape"].median()),
                        "p90_ape": float(reproduced["ape"].quantile(0.9)),
                        "median_width": float(reproduced["width"].median()),
                        "coverage": float(reproduced["covered"].mean())}
        print(json.dumps(out, indent=2, default=float))
    else:
        print(text)
        print(f"total {elapsed:.0f}s")
    if args.save:  # the markdown report, whichever format went to stdout
        shots = "" if args.shots == [1, 2, 3] else " --shots " + " ".join(map(str, args.shots))
        header = (f"# Accuracy benchmark\n\nGenerated by `ala evaluate --folds {args.folds} --seed {args.seed}"
                  f"{' --quick' if args.quick else ''} --tasks {asked}{shots}` on {revision}, on "
                  f"the bundled data (and the held-out sources for tasks U, S, H and L); the whole run (every method, "
                  f"every task) took {elapsed:.0f} s on this machine. APE is the absolute percentage error of "
                  f"generated tokens/s; coverage and width are those of the nominal 90% interval (width = "
                  f"(upper - lower) / point); Spearman is between the confidence score and the absolute "
                  f"error (negative: higher confidence, smaller error). Fit and predict seconds add up "
                  f"over the folds. Protocol and baselines: see docs/method.md.\n\n")
        Path(args.save).write_text(header + text + "\n")
        _say(f"saved {args.save}")
    return 0


def _source_revision() -> str:
    """The commit the package was run from (a git checkout), or the version when not."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=10", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return f"version {__version__} (no git checkout)"
    if done.returncode:
        return f"version {__version__} (no git checkout)"
    return f"commit {done.stdout.strip()}" + (" with uncommitted changes" if dirty.stdout.strip() else "")


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


def cmd_completion(args) -> int:
    """The shell completion script (from this very parser, so it never goes stale)."""
    try:
        import shtab
    except ImportError:
        raise InputError("shell completion needs shtab: pip install 'ala[cli]'") from None
    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    # -v is accepted before or after the subcommand (`ala -v plan ...`, `ala plan ... -v`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log what the library decides (on stderr)")
    parser = argparse.ArgumentParser(prog="ala", description="Capacity planning for LLM serving: throughput "
                                     "curves with calibrated intervals, batch size and replicas.",
                                     epilog=EXAMPLES, formatter_class=HelpFormatter, parents=[common])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common], formatter_class=HelpFormatter,
                              **kwargs)

    p = command("plan", "recommend batch size and replicas for a demand, or compare accelerators", epilog=EXAMPLES)
    _deployment_args(p, compare=True)
    g = p.add_argument_group("demand")
    g.add_argument("--demand-tokens-per-second", type=float, metavar="TOKENS/S",
                   help="output (generated) tokens per second to serve, all replicas together")
    g.add_argument("--demand-requests-per-second", type=float, metavar="REQ/S",
                   help="requests per second to serve (converted with --output-tokens)")
    g = p.add_argument_group("latency objectives (SLOs)")
    g.add_argument("--max-itl-ms", type=float, metavar="MS", help="maximum inter-token latency, in ms")
    g.add_argument("--max-tpot-ms", type=float, metavar="MS",
                   help="maximum time per output token (per request, first token excluded), in ms")
    g.add_argument("--max-ttft-ms", type=float, metavar="MS",
                   help="maximum time to first token, in ms (approximated; needs --input-tokens)")
    g.add_argument("--max-request-latency-s", type=float, metavar="S",
                   help="maximum request latency including the first token, in seconds (needs --output-tokens)")
    g.add_argument("--slo-statistic", default="mean", choices=["mean", "p50", "p90", "p95", "p99"],
                   help="which statistic the objectives bound (percentiles are approximated from the means)")
    g.add_argument("--goodput", metavar="ttft:MS,tpot:MS,e2el:MS",
                   help="vLLM bench's goodput SLOs: a request is good when it meets all of them (ms each)")
    g.add_argument("--goodput-share", type=float, default=0.9, metavar="SHARE",
                   help="share of requests that must be good, in (0, 1)")
    g = p.add_argument_group("policy")
    g.add_argument("--confidence", type=float, default=0.9, metavar="LEVEL",
                   help="level of the throughput interval replicas are sized on, in (0, 1)")
    g.add_argument("--min-replicas", type=int, default=1, metavar="N", help="fewest replicas to recommend")
    g.add_argument("--max-replicas", type=int, metavar="N", help="most replicas to recommend (default: no cap)")
    g.add_argument("--headroom", type=float, default=0.1, metavar="FRACTION",
                   help="extra capacity above the demand, as a fraction")
    g.add_argument("--price-per-hour", type=float, metavar="USD",
                   help="price of one accelerator-hour, in USD (default: the catalog's indicative price)")
    g.add_argument("--max-batch", type=int, default=1024, metavar="N", help="largest batch size to consider")
    g.add_argument("--no-alternatives", action="store_true", help="do not plan other accelerators and counts")
    p.add_argument("--plot", metavar="PNG|SVG",
                   help="draw the curve, its interval, your measurements, the ITL limit and the chosen batch")
    _model_args(p)
    p.set_defaults(func=cmd_plan)

    p = command("predict", "throughput curve with intervals at given batch sizes")
    _deployment_args(p)
    p.add_argument("--batch", default="1,8,16,32,64,128,256", metavar="N[,N...]",
                   help="batch sizes (concurrent sequences), comma-separated")
    p.add_argument("--confidence", type=float, default=0.9, metavar="LEVEL", help="interval level, in (0, 1)")
    p.add_argument("--plot", metavar="PNG|SVG", help="draw the curve with its interval band and your measurements")
    _model_args(p)
    p.set_defaults(func=cmd_predict)

    p = command("explain", "where a prediction comes from")
    _deployment_args(p)
    p.add_argument("--batch", "--batch-size", type=float, default=32.0, metavar="N", dest="batch",
                   help="batch size (concurrent sequences) to explain")
    _model_args(p)
    p.set_defaults(func=cmd_explain)

    p = command("fit", "fit on benchmark files and save the model")
    p.add_argument("--data", nargs="*", default=[], metavar="CSV",
                   help="benchmark CSV files (added to the bundled data)")
    p.add_argument("--no-bundled", action="store_true", help="fit on --data alone")
    p.add_argument("--out", required=True, metavar="FILE", help="model file to write")
    p.add_argument("--compact", action="store_true",
                   help="save data and settings only (about 100 kB; loading refits, about 30 s) instead of "
                        "also the fitted state (about 20 MB; loads in about a second under the same library "
                        "versions)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the fit")
    _output_arg(p)
    p.set_defaults(func=cmd_fit)

    p = command("import", "convert benchmark tool results (vLLM, GuideLLM, inference-perf) to CSV")
    p.add_argument("files", nargs="+", metavar="FILE", help="result JSON files")
    p.add_argument("--format", default="auto", choices=["auto", *READERS], help="which tool wrote the files")
    p.add_argument("--accelerator", required=True, metavar="NAME", help="accelerator the results were measured on")
    p.add_argument("--accelerators", type=int, default=1, metavar="N", help="accelerators per replica")
    p.add_argument("--precision", default="bfloat16", help="weight precision of the measured deployment")
    p.add_argument("--engine", help="serving engine (default: from the file, else vLLM)")
    p.add_argument("--model", metavar="ID", help="model id when the files do not name it")
    p.add_argument("--workload", default="unspecified", help="workload kind: chat, code, reasoning, synthetic, ...")
    p.add_argument("--out", metavar="CSV", help="CSV file to write (default: stdout)")
    p.set_defaults(func=cmd_import)

    p = command("evaluate", "the accuracy benchmark (see --tasks) beside the baselines")
    p.add_argument("--folds", type=int, default=5, metavar="K", help="cross-validation folds")
    p.add_argument("--tasks", default="ABCDMSR",
                   help="subset of ABCDMNXUSHLR (M: models never seen in training, also sized from their name alone; "
                        "N: the annealing ablation, ALA with random training subsets on the folds of C and M; "
                        "X: each curve's largest batches held out, beyond the measured batch; "
                        "U: the held-out sources' curves with input != output at a length training lacks; "
                        "S: each source of the bundled and held-out data held out whole; H: each accelerator "
                        "held out whole, across sources; L: the same as S on the "
                        "lockbox sources, once per release; R: every benchmarked curve asked again through "
                        "the product's query path)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--shots", type=_positive_int, nargs="+", default=[1, 2, 3], metavar="K",
                   help="live points revealed per curve in task D (default: 1 2 3)")
    p.add_argument("--quick", action="store_true", help="smaller models, for a fast look")
    p.add_argument("--data", nargs="*", default=[], metavar="CSV", help="extra benchmark CSV files")
    p.add_argument("--save", metavar="MD", help="write the markdown tables to this file")
    _output_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = command("catalog", "list the models or accelerators the catalog knows, with sources")
    p.add_argument("what", choices=["models", "accelerators"], help="which table")
    _output_arg(p)
    p.set_defaults(func=cmd_catalog)

    p = command("bench", "speed figures: fit, prediction and planning times, cold and warm")
    p.add_argument("--plans", type=int, default=0, metavar="N",
                   help="how many bundled configurations to plan (0: every one)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the fit")
    _output_arg(p)
    p.set_defaults(func=cmd_bench)

    p = command("completion", "print a shell completion script (bash: ala completion bash > "
                              "~/.local/share/bash-completion/completions/ala)")
    p.add_argument("shell", choices=["bash", "zsh", "tcsh"], help="which shell")
    p.set_defaults(func=cmd_completion)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    confidence = getattr(args, "confidence", None)
    if confidence is not None and not 0 < confidence < 1:
        print("ala: error: --confidence must lie strictly between 0 and 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (InputError, BenchmarkError, ModelFileError, UnknownAcceleratorError, UnknownModelError,
            CatalogFileError) as exc:
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
