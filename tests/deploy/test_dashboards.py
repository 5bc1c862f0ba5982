"""Grafana dashboards: the fields Grafana needs, PromQL that promtool parses, and only
metrics the operator really exports (read from a scrape of its metrics server)."""

import json
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from ala.planner import Demand, plan
from ala_operator.metrics import OperatorMetrics
from ala_operator.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "charts" / "ala-operator" / "files" / "dashboards").glob("*.json"))


def _exprs():
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                yield path.stem, panel["title"], target["expr"]


def test_three_dashboards_with_what_grafana_needs():
    assert {p.stem for p in DASHBOARDS} == {"fleet-overview", "deployment-detail", "operator-health"}
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] and board["title"] and board["panels"] and board["schemaVersion"]
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            assert panel["datasource"]["type"] == "prometheus" and panel["targets"], panel["title"]
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
            for target in panel["targets"]:
                assert target["expr"].strip() and target["refId"]
    assert len(uids) == len(DASHBOARDS)


def test_every_expression_parses_with_promtool(promtool, tmp_path):
    rules = [{"record": f"ala:dashboard:{i}", "expr": expr.replace("$namespace", "default").replace("$name", "x")}
             for i, (_, _, expr) in enumerate(_exprs())]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(rules)} rules found" in out.stdout


@pytest.fixture(scope="module")
def exported(small_model, examples):
    """Metric names a running operator metrics server exposes once it has published."""
    parsed = parse_spec(examples["vllm-llama-8b"]["spec"])
    result = plan(small_model, parsed.deployment, Demand(parsed.demand_tokens_per_s), parsed.objectives,
                  parsed.policy, alternatives=False)
    metrics = OperatorMetrics()
    metrics.publish("llm", "x", result, {"ape": 0.05, "coverage": 0.9}, observed=1000.0, desired=3, ready=3)
    metrics.refit_seconds.observe(0.05)
    metrics.refit_errors.labels("TargetNotFound").inc()
    metrics.query_failures.labels("PrometheusUnavailable").inc()
    server = metrics.serve(0, "127.0.0.1")
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_dashboards_query_only_exported_metrics(exported):
    used = {(board, title, name) for board, title, expr in _exprs() for name in re.findall(r"\bala_[a-z_]+", expr)}
    assert used
    missing = sorted((b, t, n) for b, t, n in used if n not in exported)
    assert not missing, f"dashboards query metrics the operator does not export: {missing}"


@pytest.fixture(scope="module")
def scraped(small_model, examples, helm, require_prometheus):
    """A real Prometheus scraping a live operator metrics server the way the chart's
    ServiceMonitor has it scraped: the target labels the prometheus-operator adds
    (namespace of the operator's pod, pod, service, job, container, endpoint) and the
    ServiceMonitor's own honorLabels, read from the rendered chart. Two resources share the
    name `x` in two namespaces."""
    import time

    from support.polling import wait_for

    from ala_operator.devstack.localstack import PrometheusServer
    rendered = subprocess.run([helm, "template", "ala-operator", ROOT / "charts" / "ala-operator", "--namespace",
                               "ala-system", "-f", ROOT / "charts" / "ala-operator" / "ci" / "monitoring-values.yaml"],
                              capture_output=True, text=True, timeout=120, check=True).stdout
    monitor = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    parsed = parse_spec(examples["vllm-llama-8b"]["spec"])
    result = plan(small_model, parsed.deployment, Demand(parsed.demand_tokens_per_s), parsed.objectives,
                  parsed.policy, alternatives=False)
    metrics = OperatorMetrics()
    for namespace in ("llm", "team-b"):
        metrics.publish(namespace, "x", result, {"ape": 0.05, "coverage": 0.9}, observed=1000.0, desired=3, ready=3)
    metrics.refit_seconds.observe(0.05)
    metrics.refit_errors.labels("TargetNotFound").inc()
    metrics.query_failures.labels("PrometheusUnavailable").inc()
    server = metrics.serve(0, "127.0.0.1")
    target_labels = {"namespace": "ala-system", "pod": "ala-operator-5f7d9-abcde", "service": "ala-operator",
                     "container": "operator", "endpoint": endpoint["port"]}
    job = {"job_name": "serviceMonitor/ala-system/ala-operator/0", "honor_labels": bool(endpoint.get("honorLabels")),
           "metrics_path": endpoint["path"], "scrape_interval": "1s",
           "static_configs": [{"targets": [f"127.0.0.1:{server.server_port}"], "labels": target_labels}],
           "relabel_configs": [{"target_label": "job", "replacement": "ala-operator"}]}
    try:
        with PrometheusServer([], scrape_s=1.0, jobs=[job]) as prometheus:
            def query(expr):
                url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
                return json.loads(urllib.request.urlopen(url, timeout=10).read())["data"]["result"]
            # Prometheus applies discovered targets at most every 5 s; then rate() needs two
            # scrapes, with the counters moving between them.
            assert wait_for(lambda: query("up == 1"), 30), "Prometheus never scraped the operator"
            for _ in range(3):
                metrics.refit_seconds.observe(0.07)
                metrics.refit_errors.labels("TargetNotFound").inc()
                metrics.query_failures.labels("PrometheusUnavailable").inc()
                time.sleep(1.5)
            yield query
    finally:
        server.shutdown()
        server.server_close()


def test_every_panel_returns_data_through_a_real_prometheus(scraped):
    """Each panel's query, with the dashboard's variables as Grafana fills them from
    label_values(ala_confidence, namespace), answers with series of the chosen resource
    only (not the operator pod's namespace, not the same-named resource of another)."""
    namespaces = {s["metric"]["namespace"] for s in scraped("ala_confidence")}
    assert namespaces == {"llm", "team-b"}, f"the namespace variable would offer {namespaces}"
    empty, leaked = [], []
    for board, title, expr in _exprs():
        series = scraped(expr.replace("$namespace", "llm").replace("$name", "x"))
        if not series:
            empty.append((board, title))
        if "$namespace" in expr:
            leaked += [(board, title, s["metric"]) for s in series if s["metric"].get("namespace") not in (None, "llm")]
    assert not empty, f"panels with no data: {empty}"
    assert not leaked, f"panels showing another namespace: {leaked}"
