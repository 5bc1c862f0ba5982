"""``ala-operator``: run the operator; the development stack's commands on demand.

    ala-operator run                   # in a cluster (service account) or with KUBECONFIG
    ala-operator demo --duration 120   # emulator + fleet + Prometheus + operator, then stop

``run`` imports only the operator. ``demo``, ``bench``, ``soak`` and ``replay`` load the
development stack (``ala_operator.devstack``) when called; without its extra installed
they say which one to install.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys

from ala.benchmarks import BenchmarkError

from .settings import Settings

#: What to install for the development stack's commands, and the modules it brings.
DEVSTACK_HINT = "pip install 'ala[devstack]'"
DEVSTACK_REQUIRES = ("kmock", "jsonpatch")


class DevstackMissing(Exception):
    """A development-stack command without the ``devstack`` extra installed."""


def _devstack(module: str):
    """``ala_operator.devstack.<module>``, or DevstackMissing naming what to install."""
    try:
        return importlib.import_module(f"{__package__}.devstack.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.devstack":  # left out of this installation (the image)
            raise DevstackMissing(f"this installation has no development stack (the operator image leaves it "
                                  f"out); install the package with: {DEVSTACK_HINT}") from None
        if exc.name not in DEVSTACK_REQUIRES:
            raise
        raise DevstackMissing(f"the development stack needs {exc.name}, which is not installed; "
                              f"install it with: {DEVSTACK_HINT}") from None


def main(argv: list[str] | None = None) -> int:
    from ala import __version__

    parser = argparse.ArgumentParser(prog="ala-operator", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the operator (settings from ALA_* environment variables)")
    demo = sub.add_parser("demo", help="a local stack showing recommendations converge")
    demo.add_argument("--duration", type=float, default=180.0, help="seconds to run before stopping (default 180)")
    demo.add_argument("--mode", choices=("Recommend", "Apply"), default="Recommend")
    demo.add_argument("--verbose", action="store_true", help="show the operator's own log")
    bench = sub.add_parser("bench", help="reconcile benchmark: refit and publish N resources over real HTTP; "
                                         "`bench live-points`: live points' bias against a known truth")
    bench.add_argument("what", nargs="?", choices=("reconcile", "live-points"), default="reconcile",
                       help="reconcile (default): time per refit; live-points: bias of live points read through a "
                            "real Prometheus backfilled with the engines' own metrics")
    bench.add_argument("--output", choices=("table", "json", "markdown"), default="table",
                       help="live-points: a table, one JSON object per scenario, or Markdown")
    bench.add_argument("--no-convergence", action="store_true",
                       help="live-points: skip the convergence run (which needs the fitted model)")
    bench.add_argument("--resources", default="100,1000", help="comma-separated resource counts (default 100,1000)")
    bench.add_argument("--model-file", help="a saved model (default: fit the bundled data)")
    soak = sub.add_parser("soak", help="N resources refitting over simulated time: latency and memory figures")
    soak.add_argument("--resources", type=int, default=1000)
    soak.add_argument("--minutes", type=float, default=30.0, help="simulated minutes (a refit per resource per minute)")
    soak.add_argument("--model-file", help="a saved model (default: fit the bundled data)")
    soak.add_argument("--configurations", type=int, default=60,
                      help="distinct (model, accelerator, workload) configurations the resources cycle through "
                           "(default 60, at most 60)")
    rep = sub.add_parser("replay", help="replay real request traces against scaling policies (decision quality)")
    rep.add_argument("--trace", help="a per-request trace CSV (timestamp_s,input_tokens,output_tokens), a load "
                                      "shape CSV (window_start_s,req_per_s[,mean_input_tokens,mean_output_tokens]) "
                                      "or a bundled one: conv, code, servegen-m-small, servegen-m-large (default: all)")
    rep.add_argument("--config", choices=("llama-8b-h100", "llama-70b-h100x4"), action="append",
                     help="configuration(s) to replay on (default: both)")
    rep.add_argument("--policy", choices=("static", "reactive", "ala", "predictive", "oracle"), action="append",
                     help="policy (repeatable; default: all five)")
    rep.add_argument("--scale", help="per-request trace: repeat each request this many times (default per trace); "
                                     "load shape: multiply its rates by this, or auto (the busiest window needs "
                                     "about 20 replicas; the default)")
    rep.add_argument("--cold-start", type=float, default=60.0, help="seconds before a new replica serves (default 60)")
    rep.add_argument("--output", choices=("table", "json"), default="table")
    rep.add_argument("--report", help="write NAME-table.md and one plot per scenario beside this path "
                                       "(e.g. docs/replay.md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "run":
            settings = Settings.from_env()
            logging.getLogger().setLevel(settings.log_level.upper())
            asyncio.run(_run(settings))
            return 0
        return _devstack_command(args)
    except DevstackMissing as exc:
        print(f"ala-operator {args.command}: {exc}", file=sys.stderr)
        return 2
    except (ValueError, BenchmarkError) as exc:
        print(f"ala-operator: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _run(settings: Settings) -> None:
    from .app import run
    await run(settings)


def _devstack_command(args: argparse.Namespace) -> int:
    """``demo``, ``bench``, ``soak``, ``replay``: the development stack, imported here."""
    if args.command == "replay":
        return _devstack("replay_report").main_replay(args)
    if args.command == "demo":
        return _devstack("demo").demo_stack(args.duration, args.mode, args.verbose)
    bench = _devstack("bench")
    from .app import fitted_model
    if args.command == "soak":
        if args.resources < 1 or args.minutes <= 0:
            raise ValueError("--resources must be at least 1 and --minutes positive")
        bench.soak(args.resources, args.minutes, model=fitted_model(Settings(model_file=args.model_file)),
                   distinct=args.configurations)
        return 0
    if args.what == "live-points":
        model = None if args.no_convergence else fitted_model(Settings(model_file=args.model_file))
        return _devstack("livebench").main(args.output, model)
    counts = [int(n) for n in args.resources.split(",")]
    if any(n < 1 for n in counts):
        raise ValueError("--resources takes positive counts")
    bench.reconcile_benchmark(counts, model=fitted_model(Settings(model_file=args.model_file)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
