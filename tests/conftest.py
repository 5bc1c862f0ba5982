"""Shared fixtures: real bundled benchmark data and a small fitted model.

Nothing is faked here: the fixtures read the package's own copy of the public data and fit
the real pipeline, made smaller (fewer trees, fewer annealing steps) only for speed.
"""

import pytest

from ala import ALA, load_benchmarks


@pytest.fixture(scope="session")
def table():
    return load_benchmarks()


@pytest.fixture(scope="session")
def small_model(table):
    return ALA(n_estimators=30, n_anneal=6, anneal_estimators=15, random_state=0).fit(table)
