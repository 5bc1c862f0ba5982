"""The operator's own metrics (prometheus-client), per LLMDeployment resource.

Names are what the dashboards query; a deleted resource's series are removed.
"""

from __future__ import annotations

from typing import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ala.planner import Plan

LABELS = ("namespace", "name")


class OperatorMetrics:
    """Gauges, counters and histograms in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.replicas = Gauge("ala_recommended_replicas", "Recommended replicas (bound: target, lower, upper, "
                              "uncapped).", LABELS + ("bound",), registry=r)
        self.batch = Gauge("ala_recommended_batch_size", "Recommended batch size per replica.", LABELS, registry=r)
        self.predicted = Gauge("ala_predicted_throughput_tokens_per_second", "Predicted generated tokens/s per "
                               "replica at the recommended batch (quantity: point, lower, upper).",
                               LABELS + ("quantity",), registry=r)
        self.observed = Gauge("ala_observed_throughput_tokens_per_second", "Observed generated tokens/s per "
                              "replica (latest live point).", LABELS, registry=r)
        self.current = Gauge("ala_current_replicas", "Replicas of the target now (state: desired, ready).",
                             LABELS + ("state",), registry=r)
        self.confidence = Gauge("ala_confidence", "Confidence of the recommendation, in [0, 1].", LABELS, registry=r)
        self.ape = Gauge("ala_live_ape_ratio", "Rolling absolute percentage error of live predictions (0.05 = 5%).",
                         LABELS, registry=r)
        self.coverage = Gauge("ala_live_interval_coverage_ratio", "Rolling share of live points inside the "
                              "predicted interval.", LABELS, registry=r)
        self.cost = Gauge("ala_cost_per_hour_dollars", "Cost per hour of the recommended replicas.", LABELS, registry=r)
        self.cost_per_token = Gauge("ala_cost_per_million_output_tokens_dollars", "Cost per million output tokens.",
                                    LABELS, registry=r)
        self.refit_seconds = Histogram("ala_refit_duration_seconds", "Time to refit and plan one resource.",
                                       registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.refit_errors = Counter("ala_refit_errors_total", "Refits that failed, by reason.", ("reason",),
                                    registry=r)
        self.query_failures = Counter("ala_prometheus_query_failures_total", "Prometheus queries that failed, "
                                      "by reason.", ("reason",), registry=r)
        self._gauges = (self.batch, self.observed, self.confidence, self.ape, self.coverage, self.cost,
                        self.cost_per_token)

    def publish(self, namespace: str, name: str, plan: Plan, scorecard: Mapping | None = None,
                observed: float | None = None, desired: int | None = None, ready: int | None = None) -> None:
        """Set the resource's series from a plan (and the live scorecard, if any)."""
        key = (namespace, name)
        for state, value in (("desired", desired), ("ready", ready)):
            if value is not None:
                self.current.labels(*key, state).set(value)
        if not plan.replicas or plan.batch_size is None:
            # No recommendation now: a gauge still showing the last one would be a stale answer.
            self._forget_recommendation(key)
        if plan.replicas:
            for bound, field in (("target", "target"), ("lower", "lower_bound"), ("upper", "upper_bound"),
                                 ("uncapped", "uncapped")):
                self.replicas.labels(*key, bound).set(plan.replicas[field])
        if plan.batch_size is not None:
            self.batch.labels(*key).set(plan.batch_size)
            self.confidence.labels(*key).set(plan.confidence)
            tp = plan.throughput_per_replica
            for quantity in ("value", "lower", "upper"):
                self.predicted.labels(*key, "point" if quantity == "value" else quantity).set(tp[quantity])
        if plan.cost:
            self.cost.labels(*key).set(plan.cost["per_hour"])
            if plan.cost.get("per_million_output_tokens") is not None:
                self.cost_per_token.labels(*key).set(plan.cost["per_million_output_tokens"])
        if scorecard:
            self.ape.labels(*key).set(scorecard["ape"])
            self.coverage.labels(*key).set(scorecard["coverage"])
        if observed is not None:
            self.observed.labels(*key).set(observed)

    def _forget_recommendation(self, key: tuple[str, str]) -> None:
        self._remove(key, (self.batch, self.confidence, self.cost, self.cost_per_token),
                     ((self.replicas, ("target", "lower", "upper", "uncapped")),
                      (self.predicted, ("point", "lower", "upper"))))

    def forget(self, namespace: str, name: str) -> None:
        """Remove every series of a resource (it was deleted)."""
        key = (namespace, name)
        self._remove(key, self._gauges, ((self.replicas, ("target", "lower", "upper", "uncapped")),
                                         (self.predicted, ("point", "lower", "upper")),
                                         (self.current, ("desired", "ready"))))

    @staticmethod
    def _remove(key: tuple[str, str], gauges, labelled) -> None:
        """Remove ``key``'s series from ``gauges`` and, per extra label value, from ``labelled``
        ((metric, values) pairs); a series that is not there is fine."""
        series = [(gauge, key) for gauge in gauges]
        series += [(metric, key + (value,)) for metric, values in labelled for value in values]
        for metric, labels in series:
            try:
                metric.remove(*labels)
            except KeyError:
                pass

    def serve(self, port: int, address: str = "0.0.0.0"):
        """Expose ``/metrics`` over HTTP; returns the server (``server_port`` says the port)."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return server

