"""Shared fixtures: real bundled benchmark data, a small fitted model, the example resources,
and for the tiers with a real Prometheus a held-out truth curve with a model fitted without it.

Nothing is faked here: the fixtures read the package's own copy of the public data and fit
the real pipeline, made smaller (fewer trees, fewer annealing steps) only for speed.
"""

import shutil
from pathlib import Path

import pytest
import yaml

from ala import ALA, load_benchmarks
from ala.benchmarks import group_curves


@pytest.fixture(scope="session")
def table():
    return load_benchmarks()


@pytest.fixture(scope="session")
def small_model(table):
    return ALA(n_estimators=30, n_anneal=6, anneal_estimators=15, random_state=0).fit(table)


@pytest.fixture(scope="session")
def examples():
    """The example LLMDeployment resources shipped in deploy/examples/."""
    folder = Path(__file__).resolve().parents[1] / "deploy" / "examples"
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml")) if p.name != "kustomization.yaml"}


#: A measured curve (Meta-Llama-3-8B, one H100, vLLM, 1024/1024 tokens) used as the truth.
TRUTH_CURVE = "335d81212b"


@pytest.fixture(scope="session")
def require_prometheus():
    if not shutil.which("prometheus"):
        pytest.skip("Prometheus is not installed: apt-get install prometheus (.ci/run does)")


@pytest.fixture(scope="session")
def held_out():
    """(truth curve, a small model fitted without it)."""
    from ala_operator.devstack.fleet import TrueCurve
    table = load_benchmarks()
    truth = TrueCurve.from_curves(group_curves(table), TRUTH_CURVE)
    model = ALA(n_estimators=30, n_anneal=6, anneal_estimators=15, random_state=0)
    return truth, model.fit(table[table["config_id"] != TRUTH_CURVE])


def pytest_terminal_summary(terminalreporter):
    """Say plainly, at the very end, which tiers did not run and why: a skipped tier is
    not a passed one (the README's set-up builds what the default run needs; a missing
    tool skips its tests with the command that installs it)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    tiers: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        tiers[reason.removeprefix("Skipped: ")] = tiers.get(reason.removeprefix("Skipped: "), 0) + 1
    terminalreporter.section("NOT RUN (skipped, not passed)", sep="=", yellow=True, bold=True)
    for reason, count in sorted(tiers.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:4d} test(s): {reason}")
