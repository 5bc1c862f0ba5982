"""Prometheus over its HTTP API: engine query presets, instant and range queries with
timeouts, retries and auth, and answers checked before anything trusts them."""

from __future__ import annotations

import base64
import json
import math
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable

from .engines import ENGINES, SGLANG_COMPLETION_TOKENS, EngineMetrics, name_pattern

#: Largest value believed for any series (tokens/s, sequences, requests/s, tokens).
ABSURD = 1e9
#: Largest raw counter believed (a busy engine's token counter passes 1e9 within days; this
#: is three decades of a hundred thousand tokens a second).
ABSURD_COUNTER = 1e14

def _over(function: str, pattern: str, match: str = "") -> str:
    """``sum(function({__name__=~"pattern"<,match><selector>}[<window>]))`` as a template."""
    extra = f",{match}" if match else ""
    return f'sum({function}({{{{__name__=~"{pattern}"{extra}{{sel}}}}}}[{{w}}]))'


def _preset(m: EngineMetrics) -> dict[str, str]:
    """PromQL templates (``{sel}``, ``{w}``) per signal from an engine's metric names: the
    fleet-wide queries of dashboards, demand and the aggregate pairing (live points come
    from per-pod raw samples, ``raw_selectors``)."""
    requests = _over("rate", name_pattern(m.requests, counter=True))
    generated = _over("rate", name_pattern(m.generated, counter=True), m.generated_match)

    def per_request(histogram: str | None, counter: str | None) -> str | None:
        if histogram:
            return (_over("rate", name_pattern(histogram, suffix="_sum")) + " / "
                    + _over("rate", name_pattern(histogram, suffix="_count")))
        return f"{counter} / {requests}" if counter else None

    running = name_pattern(m.running)
    out = {
        "throughput": generated,
        "batch": _over("avg_over_time", running),
        "requestRate": requests,
        "inputTokens": per_request(m.prompt_histogram,
                                   _over("rate", name_pattern(m.prompt_counter, counter=True))
                                   if m.prompt_counter else None),
        "outputTokens": per_request(m.generated_histogram, generated),
        # Replicas serving at each instant: the series whose running batch was above zero
        # over the window. Dividing by these (not by today's ready count) keeps points from
        # a rollout or a scale-up honest: a replica that was not serving yet is not counted.
        "replicas": f'count(avg_over_time({{{{__name__=~"{running}"{{sel}}}}}}[{{w}}]) > 0)',
    }
    return {signal: query for signal, query in out.items() if query}


#: PromQL templates per engine, built from the names in ``engines.ENGINES``.
PRESETS: dict[str, dict[str, str]] = {engine: _preset(m) for engine, m in ENGINES.items()}


def raw_selectors(engine: str, selector: str = "") -> dict[str, str]:
    """Series selectors (no range) whose raw samples make per-pod live points: ``tokens``,
    ``running``, the request latency histogram's ``latency_sum`` / ``latency_count``, and
    for SGLang the ``fallback_tokens`` counter of versions before ``realtime_tokens``."""
    m = ENGINES[engine]
    sel = f",{selector.strip().strip(',')}" if selector and selector.strip() else ""

    def of(name: str, *, counter: bool = False, suffix: str = "", match: str = "") -> str:
        extra = f",{match}" if match else ""
        return f'{{__name__=~"{name_pattern(name, counter=counter, suffix=suffix)}"{extra}{sel}}}'

    out = {"tokens": of(m.generated, counter=True, match=m.generated_match),
           "running": of(m.running),
           "latency_sum": of(m.latency, suffix="_sum"), "latency_count": of(m.latency, suffix="_count")}
    if engine == "sglang":
        out["fallback_tokens"] = of(SGLANG_COMPLETION_TOKENS, counter=True)
    return out


class PrometheusUnavailable(Exception):
    """Prometheus did not answer (connection refused, timeout, 5xx) after the retries."""


class PrometheusQueryError(Exception):
    """Prometheus answered with an error (bad query, 4xx)."""


class GarbageAnswer(Exception):
    """An answer that cannot be believed: not JSON, wrong type, NaN, Inf, negative, absurd."""


def demand_queries(engine: str, selector: str = "", window_s: int = 120) -> dict[str, str]:
    """Instant PromQL for what an engine receives: ``arrivals`` (requests/s arriving: its
    arrivals counter where it has one, else finished requests plus the growth of running and
    waiting ones, which is what arrived) and ``waiting`` (requests queued now). Ranks that
    repeat the numbers count once."""
    m = ENGINES[engine]
    sel = f",{selector.strip().strip(',')}" if selector and selector.strip() else ""
    once = f" without ({', '.join(m.copy_labels)})" if m.copy_labels else ""

    def gauge(name: str, fn: str = "") -> str:
        inner = f'{{__name__=~"{name_pattern(name)}"{sel}}}'
        inner = f"{fn}({inner}[{window_s}s])" if fn else inner
        return f"sum(max{once} ({inner}))" if once else f"sum({inner})"

    if m.arrivals:
        arrivals = f'sum(rate({{__name__=~"{name_pattern(m.arrivals, counter=True)}"{sel}}}[{window_s}s]))'
    else:
        arrivals = (f'sum(rate({{__name__=~"{name_pattern(m.requests, counter=True)}"{sel}}}[{window_s}s])) + '
                    f'{gauge(m.running, "deriv")} + {gauge(m.waiting, "deriv")}')
    return {"arrivals": arrivals, "waiting": gauge(m.waiting)}


def build_queries(engine: str, selector: str = "", overrides: dict[str, str] | None = None,
                  window: str = "2m") -> dict[str, str]:
    """PromQL per signal for an engine, the selector inserted and overrides applied."""
    if engine not in PRESETS:
        raise ValueError(f"no query presets for engine {engine!r}; known: {', '.join(sorted(PRESETS))}")
    sel = f",{selector.strip().strip(',')}" if selector and selector.strip() else ""
    queries = {name: template.format(sel=sel, w=window) for name, template in PRESETS[engine].items()}
    queries.update(overrides or {})
    return queries


@dataclass
class PrometheusClient:
    """A small client of the Prometheus HTTP API (``/api/v1/query``, ``/api/v1/query_range``).

    Secrets (token, password) are held only in memory and never appear in ``repr`` or
    error messages.
    """

    url: str
    timeout_s: float = 5.0
    verify_tls: bool = True
    ca_file: str | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None
    retries: int = 2
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        auth = "bearer" if self.token else ("basic" if self.username else "none")
        return f"PrometheusClient(url={self.url!r}, auth={auth}, verify_tls={self.verify_tls})"

    def _request(self, path: str, params: dict[str, str]) -> dict:
        url = f"{self.url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.username is not None:
            pair = f"{self.username}:{self.password or ''}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        context = None
        if url.startswith("https://"):
            context = ssl.create_default_context(cafile=self.ca_file)
            if not self.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout_s,
                                            context=context) as resp:
                    body = resp.read()
                break
            except urllib.error.HTTPError as exc:
                if exc.code >= 500:
                    last = f"HTTP {exc.code}"
                    continue
                raise PrometheusQueryError(f"{self.url}: HTTP {exc.code}: {_error_text(exc.read())}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
        else:
            raise PrometheusUnavailable(f"{self.url}: no answer after {self.retries + 1} attempt(s): {last}")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GarbageAnswer(f"{self.url}: answer is not JSON") from None
        if not isinstance(data, dict) or data.get("status") != "success":
            raise PrometheusQueryError(f"{self.url}: {_error_text(body)}")
        return data.get("data", {})

    def instant(self, query: str, at: float | None = None) -> list[tuple[dict, float]]:
        """Samples of an instant vector (or a scalar) as ``(labels, value)``, checked."""
        params = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._request("/api/v1/query", params)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return [({}, check_value(result[1], query))]
        if kind != "vector" or not isinstance(result, list):
            raise GarbageAnswer(f"query {query!r}: expected a vector, got {kind!r}")
        out = []
        for sample in result:
            if not isinstance(sample, dict) or not isinstance(sample.get("value"), list) or len(sample["value"]) != 2:
                raise GarbageAnswer(f"query {query!r}: malformed sample {str(sample)[:80]}")
            out.append((sample.get("metric", {}), check_value(sample["value"][1], query)))
        return out

    def scalar(self, query: str, at: float | None = None) -> float:
        """One number from a query that must return exactly one sample."""
        samples = self.instant(query, at)
        if len(samples) != 1:
            raise GarbageAnswer(f"query {query!r}: expected one sample, got {len(samples)}")
        return samples[0][1]

    def range(self, query: str, start: float, end: float, step: float) -> list[tuple[dict, list[tuple[float, float]]]]:
        """A range query as ``(labels, [(time, value), ...])``; every value checked."""
        if not (end > start and step > 0):
            raise ValueError("a range query needs end > start and step > 0")
        data = self._request("/api/v1/query_range", {"query": query, "start": f"{start:.3f}",
                                                     "end": f"{end:.3f}", "step": f"{step:g}"})
        return _matrix(data, query)

    def samples(self, selector: str, seconds: float, at: float) -> list[tuple[dict, list[tuple[float, float]]]]:
        """The raw samples of every series ``selector`` matches over the ``seconds`` before
        ``at`` (an instant query of a range vector), with each series' own labels."""
        if not seconds > 0:
            raise ValueError("raw samples need a positive range")
        query = f"{selector}[{int(math.ceil(seconds))}s]"
        return _matrix(self._request("/api/v1/query", {"query": query, "time": f"{at:.3f}"}), query,
                       limit=ABSURD_COUNTER)


def _matrix(data: dict, query: str, limit: float = ABSURD) -> list[tuple[dict, list[tuple[float, float]]]]:
    if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise GarbageAnswer(f"query {query!r}: expected a matrix, got {data.get('resultType')!r}")
    out = []
    for series in data["result"]:
        values = series.get("values") if isinstance(series, dict) else None
        if not isinstance(values, list):
            raise GarbageAnswer(f"query {query!r}: malformed series {str(series)[:80]}")
        try:
            out.append((series.get("metric", {}), [(float(t), check_value(v, query, limit)) for t, v in values]))
        except (TypeError, ValueError):
            raise GarbageAnswer(f"query {query!r}: malformed samples in {str(series)[:80]}") from None
    return out


def check_value(raw, query: str, limit: float = ABSURD) -> float:
    """A sample value as float, refusing NaN, infinities, negatives and absurd sizes."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise GarbageAnswer(f"query {query!r}: value {raw!r} is not a number") from None
    if math.isnan(value):
        raise GarbageAnswer(f"query {query!r}: value is NaN (no traffic, or a division by zero)")
    if math.isinf(value):
        raise GarbageAnswer(f"query {query!r}: value is infinite")
    if value < 0:
        raise GarbageAnswer(f"query {query!r}: value {value} is negative")
    if value > limit:
        raise GarbageAnswer(f"query {query!r}: value {value:.3g} is beyond belief (> {limit:.0g})")
    return value


def _error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
        return f"{data.get('errorType', 'error')}: {data.get('error', '')}"[:300]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return body[:200].decode("utf-8", "replace")
