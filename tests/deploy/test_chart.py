"""The Helm chart and plain manifests: lint, render, validate, one source of truth."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ala-operator"


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300)


SCENARIOS = [None] + sorted((CHART / "ci").glob("*-values.yaml"))


def _min_kube_version() -> str:
    claim = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.match(r">=\s*(\d+\.\d+\.\d+)", claim)
    assert match, f"kubeVersion {claim!r} should state a minimum"
    return match.group(1)


def _render(helm, values=None, *extra):
    args = [helm, "template", "ala-operator", CHART, "--namespace", "ala-system", *extra]
    if values:
        args += ["-f", values]
    out = run(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_helm_lint_strict(helm):
    out = run(helm, "lint", "--strict", CHART)
    assert out.returncode == 0, out.stdout + out.stderr
    for values in SCENARIOS[1:]:
        out = run(helm, "lint", "--strict", CHART, "-f", values)
        assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda v: "default" if v is None else Path(v).stem)
def test_rendered_chart_is_valid_kubernetes(helm, validate, values, tmp_path):
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(_render(helm, values))
    for version in (_min_kube_version(), "1.32.0"):
        out = run(validate, "--strict", "-k", version, "--quiet", rendered)
        assert out.returncode == 0, out.stdout + out.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered.read_text()) if d}
    assert {"Deployment", "ServiceAccount"} <= kinds
    assert ("ClusterRole" in kinds) != ("Role" in kinds)


def test_values_schema_accepts_defaults_and_scenarios_and_refuses_typos():
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.validate(defaults, schema)
    for values in SCENARIOS[1:]:
        merged = dict(defaults, **yaml.safe_load(values.read_text()))
        jsonschema.validate(merged, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(defaults, metric={"port": 1}), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(defaults, image={"repository": "x", "pullPolicy": "Sometimes"}), schema)


def test_every_values_key_has_a_comment():
    # A key needs a comment on the line above, unless it sits inside a value documented as
    # a whole ("# -- ..." above a map such as resources or securityContext).
    stack: list[tuple[int, bool]] = []
    previous = ""
    for number, line in enumerate((CHART / "values.yaml").read_text().splitlines(), 1):
        if not line.strip():
            continue
        key = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if key and not line.strip().startswith("#"):
            indent = len(key.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if not any(documented for _, documented in stack):
                assert previous.startswith("#"), f"values.yaml:{number} has no comment: {line.strip()}"
            stack.append((indent, previous.startswith("# --") and line.rstrip().endswith(":")))
        previous = line.strip()


def test_chart_defaults_are_safe():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["metrics"]["serviceMonitor"]["enabled"] is False and values["dashboards"]["enabled"] is False


def test_two_replicas_in_a_peering_by_default_one_standalone_on_request(helm):
    docs = [d for d in yaml.safe_load_all(_render(helm)) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 2 and dep["spec"]["strategy"]["type"] == "RollingUpdate"
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ALA_PEERING"] == "ala-operator" and int(env["ALA_PEERING_LIFETIME"]) >= 10
    assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(container)
    assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])
    assert dep["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    kinds = {d["kind"]: d for d in docs}
    assert kinds["ClusterKopfPeering"]["metadata"]["name"] == env["ALA_PEERING"]
    assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    role = kinds["ClusterRole"]
    assert {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": ["list", "watch", "patch"]} \
        in role["rules"]
    # Namespaced: a KopfPeering in the watched namespace, a Role for it.
    namespaced = {d["kind"]: d for d in yaml.safe_load_all(_render(helm, CHART / "ci" / "namespaced-values.yaml"))
                  if d}
    assert "KopfPeering" in namespaced and "ClusterKopfPeering" not in namespaced
    assert any(r["resources"] == ["kopfpeerings"] for r in namespaced["Role"]["rules"])
    # One replica: standalone, replaced with Recreate, no peering, no budget, no peering rights.
    single = [d for d in yaml.safe_load_all(_render(helm, None, "--set", "highAvailability.replicas=1")) if d]
    one = next(d for d in single if d["kind"] == "Deployment")
    assert one["spec"]["replicas"] == 1 and one["spec"]["strategy"]["type"] == "Recreate"
    assert "ALA_PEERING" not in {e["name"] for e in one["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not {"ClusterKopfPeering", "PodDisruptionBudget"} & {d["kind"] for d in single}
    assert "kopf.dev" not in yaml.safe_dump(next(d for d in single if d["kind"] == "ClusterRole"))


def test_chart_installs_the_source_crds(helm):
    # The copies are checked byte for byte in tests/operator/test_crd.py; here, what Helm
    # actually installs is the sources: ours and kopf's peering objects.
    sources = [yaml.safe_load((ROOT / "operator" / "crd.yaml").read_text())]
    sources += [d for d in yaml.safe_load_all((ROOT / "deploy" / "kopf-peerings.yaml").read_text()) if d]
    crds = [d for d in yaml.safe_load_all(_render(helm, None, "--include-crds")) if d and d["kind"] ==
            "CustomResourceDefinition"]
    assert sorted(yaml.safe_dump(c) for c in crds) == sorted(yaml.safe_dump(c) for c in sources)
    assert (ROOT / "deploy" / "kopf-peerings.yaml").read_bytes() == (CHART / "crds" / "kopf-peerings.yaml").read_bytes()


def test_plain_manifests_are_the_rendered_chart(helm):
    text = (ROOT / "deploy" / "operator.yaml").read_text()
    body = "\n".join(text.splitlines()[3:]) + "\n"  # after the three-line header
    assert body.strip() == _render(helm, None, "--skip-crds").strip(), \
        "deploy/operator.yaml is stale: re-render it with the command in its header"


def test_plain_manifests_validate_and_kustomize(validate):
    files = [ROOT / "deploy" / n for n in ("crd.yaml", "kopf-peerings.yaml", "namespace.yaml", "operator.yaml")]
    out = run(validate, "--strict", "-k", "1.32.0", "--quiet", *files)
    assert out.returncode == 0, out.stdout + out.stderr
    kustomization = yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(f.name for f in files)
    examples = yaml.safe_load((ROOT / "deploy" / "examples" / "kustomization.yaml").read_text())
    on_disk = {p.name for p in (ROOT / "deploy" / "examples").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(examples["resources"]) == on_disk
    if shutil.which("kubectl"):
        out = run("kubectl", "kustomize", ROOT / "deploy")
        assert out.returncode == 0 and out.stdout.count("\nkind: ") + out.stdout.startswith("kind: ") >= 1, out.stderr


def test_recommend_only_by_default(helm):
    # Nothing in the manifests turns Apply on; the CRD's default mode is Recommend.
    crd = yaml.safe_load((ROOT / "operator" / "crd.yaml").read_text())
    policy = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["policy"]
    assert policy["properties"]["mode"]["default"] == "Recommend"
    assert "mode: Apply" not in (ROOT / "deploy" / "operator.yaml").read_text()
    assert sys.version_info >= (3, 11)


def test_service_monitor_keeps_the_operators_namespace_label(helm):
    """The operator labels its series with each LLMDeployment's `namespace`; a ServiceMonitor
    without honorLabels makes Prometheus rename it `exported_namespace` (the scrape target's
    namespace wins), which empties every dashboard panel that filters on $namespace."""
    docs = [d for d in yaml.safe_load_all(_render(helm, CHART / "ci" / "monitoring-values.yaml")) if d]
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    assert all(e.get("honorLabels") is True for e in monitor["spec"]["endpoints"])
    dashboards = [d for d in docs if d["kind"] == "ConfigMap"]
    assert dashboards and any("$namespace" in "".join(d["data"].values()) for d in dashboards)


def _secret_rules(rendered: str) -> list[dict]:
    roles = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in ("Role", "ClusterRole")]
    return [rule for role in roles for rule in role["rules"] if "secrets" in rule["resources"]]


@pytest.mark.security
def test_secrets_are_readable_only_by_name_and_only_with_an_allow_list(helm):
    """RBAC cannot select Secrets by label: the chart grants `get` on the Secrets named in
    values (resourceNames), and only when credentials can go somewhere (allowedUrls); the
    label check is the operator's (tests/operator/test_credentials.py)."""
    assert _secret_rules(_render(helm)) == []
    assert _secret_rules((ROOT / "deploy" / "operator.yaml").read_text()) == []
    rules = _secret_rules(_render(helm, CHART / "ci" / "credentials-values.yaml"))
    assert rules == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["prometheus-reader"],
                      "verbs": ["get"]}]
    # Names without an allow-list grant nothing: the operator would refuse to use them.
    names_only = _render(helm, None, "--set", "prometheus.credentialSecretNames={prometheus-reader}")
    assert _secret_rules(names_only) == []
    bad = run(helm, "template", "x", CHART, "--set", "prometheus.allowedUrls={http://u:p@evil}")
    assert bad.returncode != 0 and "allowedUrls" in bad.stderr
