"""Shared fixtures: real bundled benchmark data, a small fitted model, the example resources.

Nothing is faked here: the fixtures read the package's own copy of the public data and fit
the real pipeline, made smaller (fewer trees, fewer annealing steps) only for speed.
"""

from pathlib import Path

import pytest
import yaml

from ala import ALA, load_benchmarks


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
