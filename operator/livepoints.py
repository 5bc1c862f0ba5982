"""Live points from raw per-pod samples, and the evidence a deployment keeps across refits.

Pure functions: ``observe`` fetches raw samples, ``refit.step`` calls these.

Why per pod and per scrape interval: the curve is concave, so the ratio of a fleet's (or a
window's) mean tokens to its mean batch lands below it whenever pods or moments differ (two
pods at 60 and 4, one pod busy half the time). Each pod's token counter is therefore paired
with its own running-batch gauge over one scrape interval, and an interval is believed only
when the gauge held steady across it (and, for engines that count a request's tokens when it
finishes, over the request duration before it as well). Believed intervals are pooled into
narrow batch bins, weighted by their seconds.

Ranks: series that split a pod into engines whose batches add up (vLLM's ``engine``,
SGLang's ``dp_rank``) are summed; series under which tensor-parallel ranks repeat the same
numbers (SGLang's ``tp_rank``) count once. A replica is a pod (or, without a ``pod`` label,
a scrape target).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: A raw series: its labels and its (unix seconds, value) samples.
Series = tuple[Mapping[str, str], Sequence[tuple[float, float]]]

#: The running batch is steady when its samples spread by at most this share of their mean...
STEADY_SHARE = 0.3
#: ...or by at most this many requests (small batches move by whole requests).
STEADY_REQUESTS = 2.0
#: An interval this far (relative) from its bin's median throughput is left out of the bin.
OUTLIER = 0.2
#: Width of an evidence bin in log batch (a bin spans about 15% of batch).
BIN_WIDTH = math.log(1.15)
#: Seconds, and scrape intervals, of believed intervals a bin needs before it is a live point
#: (one interval's two gauge samples say little about the batch over it).
MIN_BIN_S = 10.0
MIN_BIN_INTERVALS = 3
#: Evidence bins kept per deployment (the lightest go first).
MAX_BINS = 32
#: Half-life of evidence (seconds): a day-old observation counts half.
HALF_LIFE_S = 86400.0
#: A bin lighter than this (seconds, after decay) is forgotten.
FORGET_S = 1.0
#: New evidence this far (relative, median over overlapping bins) from the kept evidence...
SHIFT = 0.15
#: ...on this many refits in a row is a change of regime: the kept evidence is dropped.
SHIFT_STRIKES = 3


@dataclass(frozen=True)
class Interval:
    """One believed scrape interval of one pod: mean running batch and tokens/s."""

    pod: str
    start: float
    end: float
    batch: float
    throughput: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def pod_of(labels: Mapping[str, str]) -> str:
    """The replica a series belongs to: its pod, else its scrape target."""
    pod = labels.get("pod") or labels.get("instance") or labels.get("job") or ""
    return f"{labels.get('namespace', '')}/{pod}"


def per_pod(series: Iterable[Series], split_labels: Sequence[str] = (), copy_labels: Sequence[str] = ()
            ) -> dict[str, dict[float, float]]:
    """Per engine of each pod (``"ns/pod"``, or ``"ns/pod#engine=1"`` where the series carry a
    split label), its value at each timestamp; series that differ only by ``copy_labels``
    (tensor-parallel ranks repeating the numbers) count once, and series that differ by any
    other label (``finished_reason``, a model) add up within their engine."""
    engines: dict[str, dict[tuple, dict[float, float]]] = {}
    for labels, samples in series:
        split = ",".join(f"{k}={labels[k]}" for k in split_labels if k in labels)
        key = pod_of(labels) + (f"#{split}" if split else "")
        rest = tuple(sorted((k, v) for k, v in labels.items()
                            if k not in copy_labels and k not in split_labels and k != "__name__"))
        one = engines.setdefault(key, {}).setdefault(rest, {})
        for at, value in samples:
            one[round(at, 3)] = max(one.get(round(at, 3), -math.inf), value)
    out = {}
    for key, parts in engines.items():
        times = set.intersection(*(set(p) for p in parts.values()))
        out[key] = {t: sum(p[t] for p in parts.values()) for t in sorted(times)}
    return out


def pair(tokens: Mapping[str, Mapping[float, float]], running: Mapping[str, Mapping[float, float]]
         ) -> list[tuple[str, Mapping[float, float], dict[float, float], int]]:
    """(engine, token counter, running batch, engines in its pod) per engine to pair.

    A pod's point is its engines' point times their number: each data-parallel engine of a
    pod with ``n`` of them sees ``1/n`` of a replica's load, so ``(n b, n t)`` lies on the
    replica's curve. When the token counter is per pod but the batch per engine (SGLang's
    tokenizer counts per pod), the engines' batches are summed and the pod is one point.
    """
    pods: dict[str, list[str]] = {}
    for key in running:
        pods.setdefault(key.split("#", 1)[0], []).append(key)
    out = []
    for key, counter in tokens.items():
        pod = key.split("#", 1)[0]
        if key in running:
            out.append((key, counter, dict(running[key]), max(len(pods.get(pod, [])), 1)))
        elif "#" not in key and pods.get(pod):
            parts = [running[k] for k in pods[pod]]
            times = set.intersection(*(set(p) for p in parts))
            out.append((key, counter, {t: sum(p[t] for p in parts) for t in times}, 1))
    return out


def steady(values: Sequence[float]) -> bool:
    """Whether running-batch samples held steady (see ``STEADY_SHARE``)."""
    low, high = min(values), max(values)
    return high - low <= max(STEADY_SHARE * (high + low) / 2, STEADY_REQUESTS)


def intervals(tokens: Mapping[str, Mapping[float, float]], running: Mapping[str, Mapping[float, float]],
              window_start: float, warmup_s: float, lag_s: float = 0.0,
              warmup_until: float = 0.0) -> list[Interval]:
    """Believed scrape intervals of every pod.

    ``tokens`` and ``running`` are per engine by timestamp (``per_pod``), paired by ``pair``.
    Left out: counter
    resets, gaps longer than twice the pod's usual scrape interval, idle intervals (batch
    below one half), intervals where the batch moved, intervals within ``warmup_s`` of a
    series that began after ``window_start`` (a pod that started inside the window), before
    ``warmup_until`` (a recent scale), and, with ``lag_s`` > 0 (an engine that counts tokens
    when requests finish), intervals whose batch was not steady over the ``lag_s`` before.
    """
    out = []
    for pod, counter, gauge, engines in pair(tokens, running):
        times = sorted(t for t in counter if t in gauge)
        if len(times) < 2:
            continue
        usual = float(np.median(np.diff(times)))
        first = min(min(counter), min(gauge))
        started_inside = first > window_start + usual
        gauge_times = np.array(sorted(gauge))
        gauge_values = np.array([gauge[t] for t in gauge_times])
        for t0, t1 in zip(times, times[1:]):
            dt = t1 - t0
            if dt <= 0 or dt > 2 * usual or t0 < warmup_until:
                continue
            if started_inside and t0 < first + warmup_s:
                continue
            made = counter[t1] - counter[t0]
            g0, g1 = gauge[t0], gauge[t1]
            if made < 0 or min(g0, g1) < 0.5 or not steady((g0, g1)):
                continue
            if lag_s > 0:
                if t0 - lag_s < first:
                    continue  # the counter's lag reaches back before the series began
                span = gauge_values[(gauge_times >= t0 - lag_s) & (gauge_times <= t1)]
                if not steady(span.tolist()):
                    continue
            out.append(Interval(pod, t0, t1, engines * (g0 + g1) / 2, engines * made / dt))
    return out


def _bin(batch: float) -> int:
    return int(math.floor(math.log(max(batch, 1e-3)) / BIN_WIDTH))


def pool(items: Iterable[Interval]) -> dict[int, list[float]]:
    """Intervals pooled per batch bin: ``{bin: [batch, throughput, seconds, last, intervals]}``,
    means weighted by seconds. In a bin of three or more intervals, those more than ``OUTLIER``
    from the bin's median throughput are left out: a burst or an idle spell that began and
    ended between two scrapes leaves the gauge steady but not the counter."""
    groups: dict[int, list[Interval]] = {}
    for it in items:
        groups.setdefault(_bin(it.batch), []).append(it)
    out = {}
    for k, group in groups.items():
        if len(group) >= 3:
            middle = float(np.median([it.throughput for it in group]))
            group = [it for it in group if abs(it.throughput - middle) <= OUTLIER * middle] or group
        w = sum(it.seconds for it in group)
        if w > 0:
            out[k] = [sum(it.batch * it.seconds for it in group) / w, sum(it.throughput * it.seconds for it in group) / w,
                      w, max(it.end for it in group), float(len(group))]
    return out


def regime_key(*parts: Any) -> str:
    """A short fingerprint of what the curve depends on (model, hardware, engine and its
    version, precision, token lengths): evidence gathered under another key is not used."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EvidenceUpdate:
    """The evidence after a refit, and what happened to it (``reset``: why it restarted)."""

    evidence: dict
    added_s: float
    reset: str | None


def accumulate(previous: Mapping[str, Any] | None, new: Sequence[Interval], regime: str, now: float,
               half_life_s: float = HALF_LIFE_S) -> EvidenceUpdate:
    """Merge a refit's believed intervals into the kept evidence.

    Only intervals that begin at or after the last one merged count (refit windows overlap);
    older evidence decays with ``half_life_s`` as new evidence arrives; at most ``MAX_BINS`` bins are kept. Evidence
    of another regime is dropped, and so is evidence the new intervals contradict (by more
    than ``SHIFT``) on ``SHIFT_STRIKES`` refits in a row: a sustained shift.
    """
    reset = None
    prev = dict(previous or {})
    if prev and prev.get("regime") != regime:
        reset, prev = "regime changed (model, hardware, engine, image or token lengths)", {}
    try:
        kept = {int(k): [float(x) for x in v] for k, v in (prev.get("bins") or {}).items()}
        if any(len(v) != 5 for v in kept.values()):
            raise ValueError("a bin is [batch, throughput, seconds, last, intervals]")
    except (TypeError, ValueError, AttributeError):
        kept, reset = {}, "stored evidence unreadable"
    until = float(prev.get("until") or 0.0)
    fresh = [it for it in new if it.start >= until - 1e-6]
    added = pool(fresh)
    strikes = int(prev.get("strikes") or 0)
    overlap = [abs(added[k][1] / kept[k][1] - 1) for k in added if k in kept and kept[k][2] >= 3 * MIN_BIN_S
               and added[k][2] >= MIN_BIN_S and kept[k][1] > 0]
    if overlap and float(np.median(overlap)) > SHIFT:
        strikes += 1
    elif overlap:
        strikes = 0
    if strikes >= SHIFT_STRIKES:
        reset, kept, strikes = f"sustained shift: new points {float(np.median(overlap)):.0%} from the kept ones " \
                               f"on {SHIFT_STRIKES} refits in a row", {}, 0
    # Old evidence gives way to new: it decays for the time since the last refit that added
    # some (a refit with nothing new leaves the evidence, and so the answer, as it was).
    last = float(prev.get("updated") or now)
    if fresh:
        decay = 0.5 ** (max(now - last, 0.0) / half_life_s)
        for k, v in kept.items():
            v[2] *= decay
            v[4] *= decay
        last = now
    for k, (batch, thpt, seconds, end, n) in added.items():
        if k in kept:
            b = kept[k]
            w = b[2] + seconds
            kept[k] = [(b[0] * b[2] + batch * seconds) / w, (b[1] * b[2] + thpt * seconds) / w, w, max(b[3], end),
                       b[4] + n]
        else:
            kept[k] = [batch, thpt, seconds, end, n]
    kept = {k: v for k, v in kept.items() if v[2] >= FORGET_S}
    if len(kept) > MAX_BINS:
        kept = dict(sorted(kept.items(), key=lambda kv: -kv[1][2])[:MAX_BINS])
    until = max([until] + [it.end for it in fresh])
    evidence = {"regime": regime, "until": round(until, 3), "updated": round(last, 3), "strikes": strikes,
                "bins": {str(k): [round(v[0], 4), round(v[1], 4), round(v[2], 2), round(v[3], 3), round(v[4], 2)]
                         for k, v in sorted(kept.items())}}
    return EvidenceUpdate(evidence, sum(it.seconds for it in fresh), reset)


def evidence_points(evidence: Mapping[str, Any] | None, min_seconds: float = MIN_BIN_S,
                    min_intervals: float = MIN_BIN_INTERVALS) -> list[tuple[float, float, float, float]]:
    """The evidence's live points as ``(last, batch, throughput, seconds)``, oldest first:
    one per bin with at least ``min_seconds`` and ``min_intervals`` of believed intervals."""
    bins = (evidence or {}).get("bins") or {}
    points = [(float(v[3]), float(v[0]), float(v[1]), float(v[2])) for v in bins.values()
              if float(v[2]) >= min_seconds and float(v[4]) >= min_intervals]
    return sorted(points)
