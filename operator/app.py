"""The operator process: settings read once, the shared state (model, metrics, cluster,
Prometheus clients) built once, kopf started with our handlers, liveness and metrics on.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import kopf

from ala.benchmarks import load_benchmarks
from ala.estimator import ALA
from ala.persistence import load_model

from .handlers import register
from .credentials import PrometheusFactory
from .kube import KubeCluster
from .metrics import OperatorMetrics
from .settings import Settings
from .shared import Cluster, Shared

logger = logging.getLogger(__name__)


def fitted_model(settings: Settings) -> ALA:
    """The model the operator starts from: a saved model file, or a fit of the bundled data."""
    if settings.model_file:
        model = load_model(settings.model_file)
        logger.info("model loaded from %s", settings.model_file)
        return model
    table = load_benchmarks()
    model = ALA(random_state=settings.random_state).fit(table)
    logger.info("model fitted on the bundled data: %d rows", len(table))
    return model


def build_memo(settings: Settings, model: ALA | None = None, cluster: Cluster | None = None,
               metrics: OperatorMetrics | None = None) -> Shared:
    """The state every handler shares (kopf copies the memo per resource, shallowly): one
    model for every resource, read without a lock (prediction writes nothing to it)."""
    # The model first: a model file that cannot be read is the error to report, before
    # any question of where the cluster is.
    model = model if model is not None else fitted_model(settings)
    cluster = cluster if cluster is not None else KubeCluster.from_environment()
    return Shared(settings=settings, model=model, metrics=metrics or OperatorMetrics(), cluster=cluster,
                  prometheus=PrometheusFactory(cluster, settings.allowed_urls, settings.prometheus_ca_file))


def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # kopf's own readers, not the client library's: that one fixes KUBECONFIG at import.
    if kopf.login_with_service_account(**kwargs) is not None:
        return kopf.login_with_service_account(**kwargs)
    return kopf.login_with_kubeconfig(**kwargs)


class _QuietTicks(logging.Filter):
    """Drops kopf's line per timer tick ("Timer 'refit_timer' succeeded."): one per
    resource every few seconds says nothing; refits, skips that matter and failures
    have lines of their own."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Timer 'refit_timer'") and
                    (message.endswith("succeeded.") or message.endswith("is invoked.")))


_QUIET_TICKS = _QuietTicks()


def _configure(settings: kopf.OperatorSettings, ours: Settings | None = None, **_: Any) -> None:
    # Progress and diff-base in annotations under our own prefix, none in status: status
    # holds only what users read.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="ala.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="ala.io",
                                                                           key="last-handled-configuration")
    settings.persistence.finalizer = "ala.io/cleanup"
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    if ours is not None and ours.peering:
        # A named peering must exist: running standalone beside another replica would
        # refit and scale twice.
        settings.peering.mandatory = True
        settings.peering.lifetime = ours.peering_lifetime
        settings.peering.clusterwide = ours.namespace is None
        settings.peering.stealth = True  # keep-alives are not news


def peering_priority(settings: Settings) -> int:
    """The configured priority, or one drawn at random (replicas must not tie)."""
    return settings.peering_priority or 1 + secrets.randbelow(2**31 - 2)


async def run(settings: Settings, memo: Shared | None = None, stop_flag: Any = None,
              ready_flag: Any = None) -> None:
    """Run the operator until ``stop_flag`` is set (or forever)."""
    logger.info("ala-operator settings: %s", settings.describe())
    kopf_objects = logging.getLogger("kopf.objects")
    if _QUIET_TICKS not in kopf_objects.filters:
        kopf_objects.addFilter(_QUIET_TICKS)
    memo = memo if memo is not None else await asyncio.get_running_loop().run_in_executor(None, build_memo, settings)
    registry = register(kopf.OperatorRegistry(), settings.timer_seconds)
    def configure(settings: kopf.OperatorSettings, ours: Settings = settings, **kwargs: Any) -> None:
        _configure(settings, ours=ours, **kwargs)
    kopf.on.startup(registry=registry)(configure)
    kopf.on.login(registry=registry)(_login)
    server = memo.metrics.serve(settings.metrics_port, settings.bind_address)
    logger.info("metrics on :%d/metrics, liveness on :%d/healthz", server.server_port, settings.health_port)
    try:
        peering = {"standalone": True}
        if settings.peering:
            peering = {"standalone": False, "peering_name": settings.peering, "priority": peering_priority(settings)}
            logger.info("peering %r with priority %d: the replica of highest priority works, the others wait",
                        settings.peering, peering["priority"])
        await kopf.operator(
            registry=registry, memo=memo, **peering,
            clusterwide=settings.namespace is None,
            namespaces=[settings.namespace] if settings.namespace else (),
            liveness_endpoint=f"http://{settings.bind_address}:{settings.health_port}/healthz",
            stop_flag=stop_flag, ready_flag=ready_flag,
        )
    finally:
        server.shutdown()
        server.server_close()
