"""The complete local stack on loopback: the Kubernetes API emulator, a real Prometheus
server (when installed), the simulated fleet, the operator, and example resources.

Used by ``ala-operator demo`` and by the integration tests; nothing here is a mock of
the operator: it runs the same ``app.run`` a cluster would.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


from ..app import build_memo, run
from .emulator import EmulatorServer
from .loopback import request_json
from .fleet import Fleet
from ..kube import KubeCluster
from ..settings import Settings
from ..shared import Shared

INSTALL_HINT = "install it with `sudo apt-get install prometheus` (Debian/Ubuntu) or put `prometheus` on PATH"


class PrometheusNotInstalled(RuntimeError):
    pass


class PrometheusServer:
    """A real Prometheus on loopback scraping the given targets every ``scrape_s`` seconds."""

    def __init__(self, targets: list[str], scrape_s: float = 1.0, binary: str | None = None,
                 jobs: list[dict] | None = None, blocks: Path | None = None, retention: str = "2h",
                 ready_s: float = 240.0):
        """``jobs``, when given, are the scrape configs verbatim (instead of one plain job
        per target), e.g. with the relabelling a ServiceMonitor generates. ``blocks``: a
        directory of TSDB blocks (``promtool tsdb create-blocks-from``) to serve, kept for
        ``retention``."""
        self.blocks, self.retention, self.ready_s = blocks, retention, ready_s
        self.binary = binary or shutil.which("prometheus")
        if not self.binary:
            raise PrometheusNotInstalled(f"no prometheus binary found; {INSTALL_HINT}")
        self.targets, self.scrape_s, self.jobs = targets, scrape_s, jobs
        self.dir = Path(tempfile.mkdtemp(prefix="ala-prometheus-"))
        self.url = ""
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "PrometheusServer":
        config = self.dir / "prometheus.yml"
        scrape = f"{self.scrape_s:g}s"
        jobs = self.jobs or [{"job_name": f"target{i}", "metrics_path": "/" + t.split("/", 3)[3] if t.count("/") >= 3 else "/metrics",
                 "static_configs": [{"targets": [t.split("/")[2]]}]} for i, t in enumerate(self.targets)]
        config.write_text(json.dumps({"global": {"scrape_interval": scrape, "evaluation_interval": scrape},
                                      "scrape_configs": jobs}))
        if self.blocks is not None:
            shutil.copytree(self.blocks, self.dir / "data")
        for attempt in range(3):
            port = _free_port()  # another process may take it before Prometheus binds: retry
            self.url = f"http://127.0.0.1:{port}"
            self.log = open(self.dir / "prometheus.log", "wb")
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                 f"--storage.tsdb.path={self.dir / 'data'}", f"--storage.tsdb.retention.time={self.retention}"],
                stdout=self.log, stderr=subprocess.STDOUT)
            failure = self._wait_ready()
            if failure is None:
                return self
            tail = self._log_tail()
            self.__exit__(keep_dir=True)
            if "address already in use" not in tail or attempt == 2:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise RuntimeError(f"{failure}; its log ends: {tail}")
        raise AssertionError("unreachable")

    def _wait_ready(self) -> str | None:
        """None once ``/-/ready`` answers 200, else why not."""
        # Generous: on a busy two-core CI machine a TSDB with backfilled blocks has taken
        # over a minute to open; a healthy start here takes well under a second.
        deadline = time.time() + self.ready_s
        last = "no answer yet"
        while time.time() < deadline:
            if self.process.poll() is not None:
                return f"prometheus exited with {self.process.returncode}"
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return None
            except urllib.error.HTTPError as exc:  # 503 while the TSDB opens
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)[:80]
            time.sleep(0.2)
        return f"prometheus did not become ready within {self.ready_s:g} s (last answer: {last})"

    def _log_tail(self, lines: int = 8) -> str:
        """The end of Prometheus's own log, for an error message (the directory goes with it)."""
        try:
            self.log.flush()
            return " | ".join((self.dir / "prometheus.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(log unreadable: {exc})"

    def __exit__(self, *exc, keep_dir: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if getattr(self, "log", None):
            self.log.close()
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OperatorThread:
    """``app.run`` in a thread with its own event loop, stopped cleanly through kopf's flag."""

    def __init__(self, settings: Settings, memo: Shared):
        self.settings, self.memo = settings, memo
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="ala-operator", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main():
            self._stop = asyncio.Event()
            ready = asyncio.Event()
            self.loop.call_soon(self._ready.set)
            await run(self.settings, self.memo, stop_flag=self._stop, ready_flag=ready)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            self.loop.close()

    def start(self) -> "OperatorThread":
        self.thread.start()
        self._ready.wait(30)
        return self

    def stop(self, timeout: float = 30) -> None:
        if self._stop is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self.thread.join(timeout)


class LocalStack:
    """Emulator + fleet + Prometheus (+ the operator); a context manager that stops all."""

    def __init__(self, deployments, namespaces=("default",), scrape_s: float = 1.0,
                 require_prometheus: bool = False, front=None):
        """``front(core_url)``, when given, returns a context manager with ``url`` and
        ``write_kubeconfig`` put in front of the emulator (the real-API tier's aggregator:
        custom resources from a real API server, the rest from the emulator)."""
        self.deployments = deployments
        self.namespaces = namespaces
        self.scrape_s = scrape_s
        self.require_prometheus = require_prometheus
        self.dir = Path(tempfile.mkdtemp(prefix="ala-stack-"))
        self.front = front
        self.core: EmulatorServer | None = None
        self.api = None
        self.fleet: Fleet | None = None
        self.prometheus: PrometheusServer | None = None
        self.operator: OperatorThread | None = None
        self._env_before: str | None = None

    def __enter__(self) -> "LocalStack":
        try:
            self.core = self.api = EmulatorServer(self.namespaces).__enter__()
            if self.front is not None:
                self.api = self.front(self.core.url).__enter__()
            self.kubeconfig = self.api.write_kubeconfig(self.dir / "kubeconfig")
            self._env_before = os.environ.get("KUBECONFIG")
            os.environ["KUBECONFIG"] = str(self.kubeconfig)  # kopf's login and our client read it
            self.fleet = Fleet(self.api.url, self.deployments).start()
            try:
                self.prometheus = PrometheusServer([self.fleet.metrics_url], self.scrape_s).__enter__()
            except PrometheusNotInstalled:
                if self.require_prometheus:
                    raise
                self.prometheus = None
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def prometheus_url(self) -> str:
        # Without Prometheus the resources point at a closed port: MetricsAvailable=False,
        # recommendations from the prior only.
        return self.prometheus.url if self.prometheus else f"http://127.0.0.1:{_free_port()}"

    def start_operator(self, model, **settings) -> OperatorThread:
        values = dict(metrics_port=_free_port(), health_port=_free_port(), bind_address="127.0.0.1",
                      timer_seconds=2.0)
        values.update(settings)
        config = Settings(**values)
        if config.peering:  # as the chart does: the peering object exists before the replicas start
            self.request("POST", "/apis/kopf.dev/v1/clusterkopfpeerings", {
                "apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": config.peering}})
        memo = build_memo(config, model=model, cluster=KubeCluster.from_environment())
        self.operator = OperatorThread(config, memo).start()
        return self.operator

    def request(self, method: str, path: str, body=None):
        """Real HTTP to the API (what kubectl would send): (status, body)."""
        return request_json(self.api.url, method, path, body)

    def __exit__(self, *exc) -> None:
        for part in (self.operator,):
            if part is not None:
                part.stop()
        if self.prometheus is not None:
            self.prometheus.__exit__()
        if self.fleet is not None:
            self.fleet.stop()
        if self.api is not None and self.api is not self.core:
            self.api.__exit__()
        if self.core is not None:
            self.core.__exit__()
        if self._env_before is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = self._env_before
        shutil.rmtree(self.dir, ignore_errors=True)
