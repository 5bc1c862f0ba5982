"""The loopback Prometheus the integration tier starts: it survives a port taken between
choosing and binding, and when it cannot start its error carries Prometheus's own log."""
import socket

import pytest

import ala_operator.devstack.localstack as localstack
from ala_operator.devstack.localstack import PrometheusServer


def test_a_port_taken_before_prometheus_binds_is_retried_on_another(require_prometheus, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        chosen = iter([taken])
        free = localstack._free_port
        monkeypatch.setattr(localstack, "_free_port", lambda: next(chosen, None) or free())
        with PrometheusServer([]) as prom:
            assert not prom.url.endswith(f":{taken}")


def test_a_start_that_never_gets_ready_names_the_last_answer_and_the_log(require_prometheus):
    server = PrometheusServer([], ready_s=0.01)
    with pytest.raises(RuntimeError, match=r"within 0.01 s \(last answer: .*\); its log ends: .*level="):
        server.__enter__()
    assert not server.dir.exists()
