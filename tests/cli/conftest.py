"""CLI fixtures: the installed ``ala`` console script and a small saved model.

Nothing is faked: commands run as subprocesses of the real console script; the saved
model is the session's small real fit, so most commands need not refit the full model.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ala.persistence import save_model


def _script() -> str:
    found = Path(sys.executable).with_name("ala")
    return str(found) if found.exists() else (shutil.which("ala") or "ala")


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    script = _script()
    cache = tmp_path_factory.mktemp("ala-cache")  # the fitted default model, cached across calls

    def call(*args, check=None):
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "ALA_CACHE_DIR": str(cache)}
        done = subprocess.run([script, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)
        if check is not None:
            assert done.returncode == check, done.stderr
        return done

    return call


@pytest.fixture(scope="session")
def model_file(small_model, tmp_path_factory):
    return save_model(small_model, tmp_path_factory.mktemp("cli") / "small.ala", fitted=True)
