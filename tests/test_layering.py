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
