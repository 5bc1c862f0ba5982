"""Integration tier: the real kopf operator (``app.run``) against the Kubernetes API
emulator over real HTTP and a real Prometheus server scraping the simulated fleet.

Nothing of ours is faked. The fleet stands in for GPUs: its replicas follow a real
measured curve from the bundled data, held out of the model the operator starts from.
Prometheus comes from Debian's package (``.ci/run`` installs it); without it these tests
are skipped with the install hint, never passed.
"""

import shutil

import pytest

from ala.benchmarks import group_curves, load_benchmarks
from ala.pipeline import ALA

#: A measured curve (Meta-Llama-3-8B, one H100, vLLM, 1024/1024 tokens) used as the truth.
TRUTH_CURVE = "335d81212b"


@pytest.fixture(scope="session")
def require_prometheus():
    if not shutil.which("prometheus"):
        pytest.skip("Prometheus is not installed: apt-get install prometheus (.ci/run does)")


@pytest.fixture(scope="session")
def held_out():
    """(truth curve, a small model fitted without it)."""
    from ala_operator.fleet import TrueCurve
    table = load_benchmarks()
    truth = TrueCurve.from_curves(group_curves(table), TRUTH_CURVE)
    model = ALA(n_estimators=30, n_anneal=6, anneal_estimators=15, random_state=0)
    return truth, model.fit(table[table["config_id"] != TRUTH_CURVE])
