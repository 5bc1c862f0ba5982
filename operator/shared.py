"""What every handler shares, built once at start: the settings, the fitted model (read,
never written: prediction is a pure function of the model and its arguments), the
operator's metrics, the cluster, and a Prometheus client per resource."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple, Protocol

if TYPE_CHECKING:
    from ala.estimator import ALA

    from .metrics import OperatorMetrics
    from .prometheus import PrometheusClient
    from .settings import Settings
    from .spec import LLMDeploymentSpec


class Secret(NamedTuple):
    """A Secret's labels (to check its owner's consent) and its data, decoded."""

    labels: dict[str, str]
    data: dict[str, str]


class Cluster(Protocol):
    """Every Kubernetes call the operator makes (``kube.KubeCluster``, or a test double).

    Failures raise ``kube.ClusterError`` (``kube.TargetNotFound`` for a 404), naming the object.
    """

    def get_scale(self, namespace: str, api_version: str, kind: str, name: str) -> tuple[int, int]:
        """(desired replicas, ready replicas) of the target."""

    def set_scale(self, namespace: str, api_version: str, kind: str, name: str, replicas: int) -> None:
        """Write the target's desired replicas through its scale subresource."""

    def annotate(self, namespace: str, api_version: str, kind: str, name: str,
                 annotations: dict[str, str | None]) -> None:
        """Merge annotations into the target (None removes a key)."""

    def patch_status(self, namespace: str, name: str, status: dict,
                     resource_version: str | None = None) -> str | None:
        """Merge ``status`` into the LLMDeployment's status now; with ``resource_version``
        only if the object has not changed since (else ``kube.StaleWrite``). Returns the
        new resourceVersion."""

    def patch_resource(self, namespace: str, name: str, patch: dict,
                       resource_version: str | None = None) -> str | None:
        """Merge a handler's patch (``status`` and ``metadata``) into the LLMDeployment,
        the status write conditional on ``resource_version`` when given."""

    def secret(self, namespace: str, name: str) -> Secret:
        """A Secret's labels and data, decoded."""

    def config_map(self, namespace: str, name: str) -> dict[str, str]:
        """A ConfigMap's data."""


@dataclass(frozen=True)
class Shared:
    """kopf's ``memo``: the state every handler shares (kopf copies it per resource,
    shallowly, so every resource sees the same model, metrics and cluster)."""

    settings: "Settings"
    model: "ALA"
    metrics: "OperatorMetrics"
    cluster: Cluster
    prometheus: Callable[["LLMDeploymentSpec", str], "PrometheusClient"]
