"""The pure library never imports the operator side, Kubernetes or HTTP clients."""

import ast
from pathlib import Path

FORBIDDEN = {"kopf", "kubernetes", "aiohttp", "requests", "httpx", "urllib3", "ala_operator"}


def test_ala_imports_no_operator_side():
    root = Path(__file__).resolve().parents[1] / "ala"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders


def test_stdlib_operator_module_is_not_shadowed():
    import operator

    assert hasattr(operator, "itemgetter")


def test_operator_run_imports_no_development_stack():
    """``ala-operator run`` loads the operator and nothing of the development stack: no API
    emulator, simulated fleet, replay, local stack or benchmark, and no kmock (the production
    image does not install it; jsonpatch, the extra's other half, is kopf's own dependency
    too). Checked in a fresh interpreter, through the command's own path (``cli`` then
    ``app``, which builds the handlers)."""
    import json
    import subprocess
    import sys

    probe = ("import sys, json, ala_operator.cli, ala_operator.app, ala_operator.handlers; "
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('ala_operator', 'kmock')))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                                       text=True).stdout)
    assert "ala_operator.handlers" in loaded and "ala_operator.refit" in loaded  # the probe did load the operator
    assert [m for m in loaded if m.startswith("ala_operator.devstack") or m.split(".")[0] == "kmock"] == []


def test_operator_core_never_imports_the_development_stack():
    """No module of the operator proper names ``devstack`` at import time (the CLI loads
    it inside its development commands only)."""
    root = Path(__file__).resolve().parents[1] / "operator"
    offenders = []
    for path in root.glob("*.py"):
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.module and "devstack" in node.module:
                offenders.append(f"{path.name}: {node.module}")
            if isinstance(node, ast.Import) and any("devstack" in a.name or a.name == "kmock" for a in node.names):
                offenders.append(path.name)
    assert not offenders


def test_development_commands_name_the_missing_extra(monkeypatch, capsys):
    """Without kmock installed, ``ala-operator demo`` exits 2 saying which extra to install."""
    import builtins

    from ala_operator import cli

    real_import = builtins.__import__

    def no_kmock(name, *args, **kwargs):
        if name == "kmock" or name.startswith("kmock."):
            raise ModuleNotFoundError("No module named 'kmock'", name="kmock")
        return real_import(name, *args, **kwargs)

    import sys
    for name in [m for m in sys.modules if m.startswith("ala_operator.devstack")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_kmock)
    assert cli.main(["demo", "--duration", "1"]) == 2
    assert "ala[devstack]" in capsys.readouterr().err
