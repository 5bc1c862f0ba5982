"""`ala-operator run` as a child process (what a pod runs), its log kept in a file."""

import os
import signal
import socket
import subprocess
import sys
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OperatorProcess:
    def __init__(self, kubeconfig, model_file, log_path, allowed_urls="", **settings):
        """``settings``: more ALA_* variables by their Settings names (``peering="x"``)."""
        self.metrics_port = free_port()
        self.env = dict(os.environ, KUBECONFIG=str(kubeconfig), ALA_MODEL_FILE=str(model_file),
                        ALA_PROMETHEUS_ALLOWED_URLS=allowed_urls,
                        ALA_METRICS_PORT=str(self.metrics_port), ALA_HEALTH_PORT=str(free_port()),
                        ALA_BIND_ADDRESS="127.0.0.1", ALA_TIMER_SECONDS="2", ALA_LOG_LEVEL="DEBUG",
                        **{f"ALA_{k.upper()}": str(v) for k, v in settings.items()})
        self.log_path, self.process = log_path, None

    def start(self) -> "OperatorProcess":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "ala_operator.cli", "run"], env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def kill(self) -> None:
        """A crash: no handler, finalizer or flag gets a chance to run."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
