"""The Dockerfile's text: hadolint on the instructions, and the properties we promise
(multi-stage, slim base by default, non-root, read-only friendly, no build tools in the
final stage). The image itself is built and run in test_image.py."""

import re
import subprocess
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _stages():
    """The stages (FROM ..., its instructions); ARGs before the first FROM are in ``args``."""
    stages, current, args = [], None, {}
    for raw in re.sub(r"\\\n", " ", DOCKERFILE.read_text()).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest)
            current = {"from": base, "lines": []}
            stages.append(current)
        elif current is None:
            assert instruction.upper() == "ARG", f"only ARG may come before FROM: {line}"
            name, _, default = rest.partition("=")
            args[name] = default
            continue
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
