"""Secrets by consent and URLs by allow-list (docs/security.md): what a resource can make
the operator send, and to whom. Against the API emulator over real HTTP and a loopback
Prometheus that records every request it gets."""

import base64
import ssl
import subprocess
import threading
from http.server import ThreadingHTTPServer

import pytest

from ala_operator.credentials import CONSENT_LABEL, CredentialsRefused, PrometheusFactory, parse_prefixes, url_allowed
from ala_operator.devstack.emulator import EmulatorServer
from ala_operator.devstack.loopback import QuietHandler, request_json
from ala_operator.kube import KubeCluster, TargetNotFound
from ala_operator.prometheus import PrometheusClient, PrometheusUnavailable
from ala_operator.settings import Settings
from ala_operator.spec import parse_spec

pytestmark = pytest.mark.security
SECRETS = "/api/v1/namespaces/default/secrets"
ANSWER = (200, {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "1"]}]}})


@pytest.fixture(scope="module")
def api():
    with EmulatorServer(("default",)) as server:
        for name, labels in (("consenting", {CONSENT_LABEL: "true"}), ("unlabelled", {}),
                             ("other-value", {CONSENT_LABEL: "yes"})):
            request_json(server.url, "POST", SECRETS, {"metadata": {"name": name, "labels": labels},
                                                       "data": {"token": base64.b64encode(b"t0ken").decode()}})
        yield server


@pytest.fixture
def cluster(api, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    return KubeCluster.from_environment()


def _spec(examples, url, secret=None, key="token"):
    prometheus = {"url": url}
    if secret:
        prometheus["secretRef"] = {"name": secret, "tokenKey": key}
    return parse_spec(dict(examples["vllm-llama-8b"]["spec"], prometheus=prometheus))


def _secret_reads(api):
    return [u for u in api.emulator.used if u[2] == "secrets"]


def test_a_consenting_secret_is_sent_only_to_an_allowed_url(cluster, prom, examples):
    prom.answers["/api/v1/query"] = [ANSWER]
    factory = PrometheusFactory(cluster, allowed_urls=(prom.url + "/",))
    client = factory(_spec(examples, prom.url, "consenting"), "default")
    assert client.scalar("up") == 1.0
    assert prom.requests[-1][1]["Authorization"] == "Bearer t0ken"
    assert "t0ken" not in repr(client)


@pytest.mark.parametrize("secret", ["unlabelled", "other-value"])
def test_a_secret_without_its_owners_label_is_never_used(cluster, prom, examples, secret):
    factory = PrometheusFactory(cluster, allowed_urls=(prom.url,))
    with pytest.raises(CredentialsRefused, match=f"default/{secret} does not carry the label {CONSENT_LABEL}") as exc:
        factory(_spec(examples, prom.url, secret), "default")
    assert exc.value.reason == "SecretNotLabelled" and not prom.requests


def test_without_an_allow_list_no_credentials_go_anywhere_and_no_secret_is_read(api, cluster, prom, examples):
    api.emulator.used.clear()
    factory = PrometheusFactory(cluster)
    with pytest.raises(CredentialsRefused, match="ALA_PROMETHEUS_ALLOWED_URLS") as exc:
        factory(_spec(examples, prom.url, "consenting"), "default")
    assert exc.value.reason == "CredentialsNotAllowed"
    assert not _secret_reads(api), "the Secret was read although its value could not be used"
    # A query without credentials still works with no allow-list (the default install).
    prom.answers["/api/v1/query"] = [ANSWER]
    assert factory(_spec(examples, prom.url), "default").scalar("up") == 1.0
    assert "Authorization" not in prom.requests[-1][1]


def test_a_url_outside_the_allow_list_is_refused_before_anything_is_read_or_sent(api, cluster, prom, examples):
    api.emulator.used.clear()
    factory = PrometheusFactory(cluster, allowed_urls=("https://prometheus.monitoring.svc:9090",))
    for secret in ("consenting", None):
        with pytest.raises(CredentialsRefused, match=f"{prom.url} is not under any URL") as exc:
            factory(_spec(examples, prom.url, secret), "default")
        assert exc.value.reason == "URLNotAllowed"
    assert not prom.requests and not _secret_reads(api)


def test_a_missing_key_or_secret_names_it(cluster, prom, examples):
    factory = PrometheusFactory(cluster, allowed_urls=(prom.url,))
    with pytest.raises(CredentialsRefused, match="default/consenting has no key"):
        factory(_spec(examples, prom.url, "consenting", key="nope"), "default")
    with pytest.raises(TargetNotFound, match="Secret default/absent"):
        factory(_spec(examples, prom.url, "absent"), "default")


@pytest.mark.parametrize("url, allowed", [
    ("http://prom.monitoring:9090", True),
    ("http://prom.monitoring:9090/", True),
    ("http://PROM.monitoring:9090/api", True),
    ("http://prom.monitoring:80", False),             # another port
    ("https://prom.monitoring:9090", False),          # another scheme
    ("http://prom.monitoring.evil.com:9090", False),  # a host that only starts the same
    ("http://prom.monitoring:9090@evil.com", False),  # user information: the host is evil.com
    ("http://user:pw@prom.monitoring:9090", False),
    ("http://evil.com/http://prom.monitoring:9090", False),
    ("http://prom.monitoring:notaport", False),
    ("https://thanos.example.com/tenant-a", True),
    ("https://thanos.example.com/tenant-a/api/v1", True),
    ("https://thanos.example.com/tenant-ab", False),  # a path prefix only at a "/"
    ("https://thanos.example.com/tenant-b", False),
    ("https://thanos.example.com:443/tenant-a", True),  # the default port spelt out
])
def test_url_allow_list_matches_origin_and_whole_path_segments(url, allowed):
    prefixes = ("http://prom.monitoring:9090", "https://thanos.example.com/tenant-a/")
    assert url_allowed(url, prefixes) is allowed


@pytest.mark.parametrize("text, error", [
    ("ftp://x", "not an http"), ("prom:9090", "not an http"), ("http://u:p@prom", "credentials"),
    ("http://prom/?q=1", "query"),
])
def test_bad_allow_list_entries_stop_the_start_with_their_name(text, error):
    with pytest.raises(ValueError, match=error):
        parse_prefixes(text)
    with pytest.raises(ValueError, match="ALA_PROMETHEUS_ALLOWED_URLS"):
        Settings.from_env({"ALA_PROMETHEUS_ALLOWED_URLS": text})
    assert Settings.from_env({"ALA_PROMETHEUS_ALLOWED_URLS": "http://a:1, https://b/c"}).allowed_urls == \
        ("http://a:1", "https://b/c")


def test_a_missing_ca_file_stops_the_start():
    with pytest.raises(ValueError, match="ALA_PROMETHEUS_CA_FILE='/nope.pem': no such file"):
        Settings.from_env({"ALA_PROMETHEUS_CA_FILE": "/nope.pem"})


@pytest.fixture(scope="module")
def tls_prometheus(tmp_path_factory):
    """A loopback HTTPS server with a certificate of its own CA (openssl)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)

    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.reply(*ANSWER)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.shutdown()
    server.server_close()


def test_a_custom_ca_verifies_a_private_prometheus(tls_prometheus, cluster, examples):
    url, ca = tls_prometheus
    with pytest.raises(PrometheusUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        PrometheusClient(url, retries=0).scalar("up")
    assert PrometheusClient(url, retries=0, ca_file=ca).scalar("up") == 1.0
    # Through the operator's own path: the setting reaches every resource's client.
    settings = Settings.from_env({"ALA_PROMETHEUS_CA_FILE": ca})
    factory = PrometheusFactory(cluster, settings.allowed_urls, settings.prometheus_ca_file)
    assert factory(_spec(examples, url), "default").scalar("up") == 1.0
