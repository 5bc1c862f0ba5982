"""Loopback HTTP, the small parts every simulator here shares: a quiet request handler
that answers in one call, and one JSON call made as kubectl would make it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler


class QuietHandler(BaseHTTPRequestHandler):
    """A loopback HTTP handler (fleet metrics, stand-in Prometheus answers) that answers
    with one call and does not log every request."""

    def reply(self, status: int, body: bytes | dict | list, content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args) -> None:
        pass


def request_json(base_url: str, method: str, path: str, body=None, timeout: float = 10.0) -> tuple[int, dict]:
    """One JSON call over HTTP, as kubectl would make it: (status, decoded body). PATCH
    bodies go as merge patches (a list body as a JSON patch). Connection errors raise."""
    data = None if body is None else json.dumps(body).encode()
    kind = "application/json"
    if method == "PATCH":
        kind = "application/json-patch+json" if isinstance(body, list) else "application/merge-patch+json"
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method, headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.load(exc)
        except ValueError:
            return exc.code, {}
