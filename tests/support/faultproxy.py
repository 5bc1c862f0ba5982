"""A proxy in front of a real Prometheus that misbehaves on cue: refuses connections,
answers slowly, answers 500, or answers garbage (NaN, Inf, absurd values, the wrong
result type, no series). ``mode`` switches it; "pass" forwards untouched."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from http.server import ThreadingHTTPServer

from ala_operator.devstack.loopback import QuietHandler

GARBAGE = {
    "nan": "NaN", "inf": "+Inf", "absurd": "1e15",
}


class FaultProxy:
    def __init__(self, upstream: str, slow_s: float = 3.0):
        self.upstream, self.slow_s = upstream.rstrip("/"), slow_s
        self.mode = "pass"
        self.requests = 0
        self.authorizations: set[str] = set()  # the Authorization headers the operator sent
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: ThreadingHTTPServer | None = None
        self.up()

    def up(self) -> None:
        proxy = self

        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                proxy.requests += 1
                if self.headers.get("Authorization"):
                    proxy.authorizations.add(self.headers["Authorization"])
                mode = proxy.mode
                if mode == "slow":
                    time.sleep(proxy.slow_s)
                if mode == "500":
                    return self.reply(500, {"status": "error", "error": "injected"})
                with urllib.request.urlopen(proxy.upstream + self.path, timeout=30) as r:
                    body = json.load(r)
                if mode.startswith("garbage:"):
                    body = proxy.spoil(body, mode.split(":", 1)[1])
                self.reply(200, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Stop listening: connections are refused, as with a Prometheus that is gone."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @staticmethod
    def spoil(body: dict, kind: str) -> dict:
        data = body.get("data", {})
        if kind == "empty":
            return {"status": "success", "data": {"resultType": data.get("resultType", "matrix"), "result": []}}
        if kind == "type":
            return {"status": "success", "data": {"resultType": "string", "result": [0, "hello"]}}
        for series in data.get("result", []):
            if "values" in series:
                series["values"] = [[t, GARBAGE[kind]] for t, _ in series["values"]]
            if "value" in series:
                series["value"] = [series["value"][0], GARBAGE[kind]]
        return body

    def close(self) -> None:
        self.down()
