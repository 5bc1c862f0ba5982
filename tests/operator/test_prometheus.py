import pytest

from ala_operator.engines import ENGINES
from ala_operator.prometheus import (GarbageAnswer, PrometheusClient, PrometheusQueryError,
                                     PrometheusUnavailable, build_queries, check_value, demand_queries,
                                     raw_selectors)


def vector(*values):
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": {"pod": f"p{i}"}, "value": [1.0, str(v)]}
                                                     for i, v in enumerate(values)]}}


def test_presets_match_both_metric_spellings_and_take_overrides():
    q = build_queries("vllm", 'namespace="llm"', {"batch": "my_batch"})
    assert '__name__=~"vllm[:_]generation_tokens(_total)?",namespace="llm"' in q["throughput"]
    assert q["batch"] == "my_batch"
    assert set(build_queries("tgi")) == set(build_queries("sglang")) == {
        "throughput", "batch", "requestRate", "inputTokens", "outputTokens", "replicas"}
    assert q["replicas"] == 'count(avg_over_time({__name__=~"vllm[:_]num_requests_running",namespace="llm"}[2m]) > 0)'
    with pytest.raises(ValueError, match="no query presets"):
        build_queries("llamacpp")


def test_instant_and_scalar(prom):
    prom.answers["/api/v1/query"] = [(200, vector(12.5))]
    client = PrometheusClient(prom.url, token="s3cret")
    assert client.scalar("up") == 12.5
    path, headers = prom.requests[-1]
    assert "query=up" in path and headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(client)


def test_retries_5xx_then_succeeds(prom):
    prom.answers["/api/v1/query"] = [(500, b"oops"), (503, b"busy"), (200, vector(3))]
    slept = []
    client = PrometheusClient(prom.url, retries=2, backoff_s=0.1, sleep=slept.append)
    assert client.scalar("x") == 3.0 and slept == [0.1, 0.2]


def test_unreachable_and_timeouts(prom):
    with pytest.raises(PrometheusUnavailable, match="no answer after 2 attempt"):
        PrometheusClient("http://127.0.0.1:9", retries=1, sleep=lambda s: None).scalar("x")
    prom.answers["/api/v1/query"] = [("sleep", 1.0)]
    with pytest.raises(PrometheusUnavailable):
        PrometheusClient(prom.url, timeout_s=0.2, retries=0).scalar("x")


@pytest.mark.parametrize("answer,error,fragment", [
    ((200, vector("NaN")), GarbageAnswer, "NaN"),
    ((200, vector("+Inf")), GarbageAnswer, "infinite"),
    ((200, vector(-4)), GarbageAnswer, "negative"),
    ((200, vector(5e12)), GarbageAnswer, "beyond belief"),
    ((200, vector()), GarbageAnswer, "expected one sample"),
    ((200, vector(1, 2)), GarbageAnswer, "expected one sample"),
    ((200, b"<html>"), GarbageAnswer, "not JSON"),
    ((200, {"status": "success", "data": {"resultType": "string", "result": [1, "a"]}}), GarbageAnswer, "vector"),
    ((400, {"status": "error", "errorType": "bad_data", "error": "parse error"}), PrometheusQueryError, "parse error"),
])
def test_garbage_and_errors_are_refused_with_a_reason(prom, answer, error, fragment):
    prom.answers["/api/v1/query"] = [answer]
    with pytest.raises(error, match=fragment):
        PrometheusClient(prom.url, retries=0).scalar("q")


def test_range_query(prom):
    prom.answers["/api/v1/query_range"] = [(200, {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[10, "1"], [20, "2.5"]]}]}})]
    series = PrometheusClient(prom.url).range("x", 0, 30, 10)
    assert series == [({}, [(10.0, 1.0), (20.0, 2.5)])]
    with pytest.raises(ValueError):
        PrometheusClient(prom.url).range("x", 30, 0, 10)


def test_check_value():
    assert check_value("0", "q") == 0.0
    with pytest.raises(GarbageAnswer, match="not a number"):
        check_value(None, "q")


@pytest.fixture(scope="module")
def https_prometheus(tmp_path_factory):
    """A Prometheus-shaped HTTPS endpoint on loopback with a self-signed certificate."""
    import shutil
    import ssl
    import subprocess
    import threading
    from http.server import ThreadingHTTPServer

    from ala_operator.devstack.loopback import QuietHandler

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   cwd=folder, check=True, capture_output=True)

    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.reply(200, vector(42.0))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_tls_is_verified_unless_the_resource_turns_it_off(https_prometheus):
    with pytest.raises(PrometheusUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        PrometheusClient(https_prometheus, retries=0).scalar("up")
    assert PrometheusClient(https_prometheus, retries=0, verify_tls=False).scalar("up") == 42.0


def test_tls_verification_is_on_by_default_in_a_spec(examples):
    from ala_operator.spec import parse_spec
    spec = examples["vllm-llama-8b"]["spec"]
    assert parse_spec(spec).prometheus.verify_tls is True
    assert parse_spec({**spec, "prometheus": {**spec["prometheus"], "insecureSkipTLSVerify": True}}
                      ).prometheus.verify_tls is False


def test_tls_skip_must_be_a_boolean(examples):
    """The string "false" is truthy in Python: read as a flag it would turn verification
    off. It is refused, naming the field."""
    import pytest

    from ala_operator.spec import SpecError, parse_spec
    spec = examples["vllm-llama-8b"]["spec"]
    for text in ("false", "true", 0, 1):
        with pytest.raises(SpecError, match="insecureSkipTLSVerify") as err:
            parse_spec({**spec, "prometheus": {**spec["prometheus"], "insecureSkipTLSVerify": text}})
        assert err.value.reason == "NotABoolean"


def test_every_engine_has_presets_raw_selectors_and_demand_in_its_own_names():
    assert set(ENGINES) == {"vllm", "sglang", "tgi", "tensorrt-llm"}
    raw = raw_selectors("tensorrt-llm", 'namespace="llm"')
    assert raw["tokens"] == '{__name__=~"trtllm[:_]generation_tokens(_total)?",namespace="llm"}'
    assert raw["running"] == '{__name__=~"trtllm[:_]num_requests_running",namespace="llm"}'
    assert ENGINES["tensorrt-llm"].metrics_path == "/prometheus/metrics" and ENGINES["tgi"].generated_on_completion
    sglang = raw_selectors("sglang")
    assert sglang["tokens"] == '{__name__=~"sglang[:_]realtime_tokens(_total)?",mode="decode"}'
    assert "generation_tokens" in sglang["fallback_tokens"]  # SGLang before realtime_tokens
    assert raw_selectors("tgi")["latency_count"] == '{__name__=~"tgi[:_]request_duration_count"}'
    # Demand: TGI counts arrivals itself; the others are finished requests plus the growth of
    # running and waiting ones. SGLang's repeated tensor-parallel ranks count once.
    assert demand_queries("tgi")["arrivals"] == 'sum(rate({__name__=~"tgi[:_]request_count(_total)?"}[120s]))'
    vllm = demand_queries("vllm", 'service="x"', 60)
    assert "deriv({__name__=~\"vllm[:_]num_requests_waiting\",service=\"x\"}[60s])" in vllm["arrivals"]
    assert demand_queries("sglang")["waiting"] == (
        'sum(max without (tp_rank, pp_rank, moe_ep_rank) ({__name__=~"sglang[:_]num_queue_reqs"}))')


def test_raw_samples_come_back_per_series(prom):
    prom.answers["/api/v1/query"] = [(200, {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"pod": "a"}, "values": [[1.0, "2"], [16.0, "3"]]}]}}),
        (200, {"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"pod": "a"}, "values": [[1.0, "x"]]}]}})]
    client = PrometheusClient(prom.url)
    assert client.samples('{__name__="up"}', 300, at=1000.0) == [({"pod": "a"}, [(1.0, 2.0), (16.0, 3.0)])]
    # A busy engine's token counter passes a billion within days: raw counters may be large.
    prom.answers["/api/v1/query"].insert(0, (200, {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"pod": "a"}, "values": [[1.0, "4.2e12"]]}]}}))
    assert client.samples('{__name__="up"}', 300, at=1000.0)[0][1] == [(1.0, 4.2e12)]
    assert "%5B300s%5D" in prom.requests[-1][0] and "time=1000.000" in prom.requests[-1][0]
    with pytest.raises(GarbageAnswer, match="not a number"):
        client.samples('{__name__="up"}', 300, at=1000.0)
