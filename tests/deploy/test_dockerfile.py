"""The container image, checked without a Docker engine: hadolint on the instructions,
the properties we promise (multi-stage, slim, non-root, read-only friendly, no build
tools in the final stage), and the entrypoint run from a fresh virtual environment built
the way the Dockerfile builds it."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _stages():
    stages, current = [], None
    for raw in re.sub(r"\\\n", " ", DOCKERFILE.read_text()).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            current = {"from": rest, "lines": []}
            stages.append(current)
        current["lines"].append((instruction.upper(), rest))
    return stages


def test_hadolint_passes(hadolint):
    out = subprocess.run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_final_stage_is_slim_non_root_and_has_no_build_tools():
    stages = _stages()
    assert len(stages) >= 2, "multi-stage: build in one stage, copy into a slim one"
    final = stages[-1]
    assert "slim" in final["from"]
    instructions = [i for i, _ in final["lines"]]
    assert "RUN" not in instructions, "the final stage installs nothing: it copies the built environment"
    user = [rest for i, rest in final["lines"] if i == "USER"]
    assert user and re.fullmatch(r"\d+(:\d+)?", user[-1]) and not user[-1].startswith("0"), "numeric non-root USER"
    entry = [rest for i, rest in final["lines"] if i == "ENTRYPOINT"]
    assert entry and entry[-1].startswith("["), "exec-form ENTRYPOINT"
    env = " ".join(rest for i, rest in final["lines"] if i == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env, "nothing written outside /tmp"
    text = DOCKERFILE.read_text()
    assert not re.search(r"apt-get|gcc|build-essential", "\n".join(r for _, r in final["lines"]))
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore and "*" in ignore and "COPY . " not in text


@pytest.mark.slow
def test_entrypoint_runs_from_a_fresh_venv_built_like_the_image(tmp_path):
    build = _stages()[0]
    installs = [rest for i, rest in build["lines"] if i == "RUN" and "pip install" in rest]
    extra = re.search(r"'\.\[([a-z,]+)\]'", " ".join(installs))
    assert extra, "the build stage installs the project with an extra"
    entry = shlex.split(_stages()[-1]["lines"][-1][1].strip("[]").replace(",", " ").replace('"', ""))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    out = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"{ROOT}[{extra.group(1)}]"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    command = [str(venv / "bin" / entry[0]), *entry[1:], "--help"]
    out = subprocess.run([str(venv / "bin" / entry[0]), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "run" in out.stdout, out.stderr
    # `run` with an unreadable model file fails fast with a clear message, not a traceback.
    bad = subprocess.run(command[:-1], capture_output=True, text=True, timeout=120,
                         env={"ALA_MODEL_FILE": str(tmp_path / "missing.ala"), "HOME": str(tmp_path),
                              "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "none")})
    assert bad.returncode == 2 and "missing.ala" in bad.stderr, bad.stderr[-2000:]
    # The image carries no development stack: its extra is not installed, the build stage
    # deletes the subpackage, and the development commands say what to install.
    assert "devstack" not in extra.group(1)
    assert any("rm -rf /opt/ala/lib/python3.11/site-packages/ala_operator/devstack" in rest for rest in installs)
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import kmock"], capture_output=True, text=True)
    assert probe.returncode != 0 and "kmock" in probe.stderr
    demo = subprocess.run([str(venv / "bin" / entry[0]), "demo", "--duration", "1"], capture_output=True, text=True,
                          timeout=120, env={"HOME": str(tmp_path), "PATH": f"{venv / 'bin'}:/usr/bin:/bin"})
    assert demo.returncode == 2 and "ala[devstack]" in demo.stderr, demo.stderr[-2000:]
