"""The actuation half (the VerticalPodAutoscaler's updater to the recommender that
``refit.step`` is): carry out a decided scale on the target, safely.

The record of the scale (``lastScaleTime``, ``lastScale``) is written to the resource's
status before the scale: a process that dies between the two leaves a record its
successor honours (it waits out the stabilisation window) rather than a scale it does not
know of (it would act again at once). A scale that fails puts the record back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from .kube import ClusterError
from .shared import Cluster
from .status import timestamp


@dataclass(frozen=True)
class Actuation:
    """What happened: ``replicas`` set on the target (None: nothing was set), the reason,
    the status fields to publish, and the error when the scale failed."""

    replicas: int | None
    why: str
    status: dict[str, Any]
    error: ClusterError | None = None
    #: The resource's resourceVersion after the write-ahead record (None: nothing written).
    resource_version: str | None = None


def actuate(cluster: Cluster, namespace: str, name: str, target: tuple[str, str, str, str], desired: int,
            replicas: int | None, why: str, status: Mapping[str, Any], now: datetime,
            resource_version: str | None = None) -> Actuation:
    """Scale ``target`` (namespace, apiVersion, kind, name) from ``desired`` to ``replicas``,
    the record written ahead; ``status`` is the resource's status before this refit. With
    ``resource_version`` (what the decision was made from) the record is written only if
    the resource has not changed since: a decision about an edited spec is not carried out."""
    if replicas is None:
        return Actuation(None, why, {})
    record = {"lastScaleTime": timestamp(now), "lastScale": {"from": desired, "to": replicas,
                                                             "time": timestamp(now)}}
    written = False
    version = None
    try:
        version = cluster.patch_status(namespace, name, record, resource_version=resource_version)
        written = True
        cluster.set_scale(*target, replicas)
    except ClusterError as exc:
        # The scale did not happen: a record already written goes back to what it was.
        restored = {"lastScaleTime": status.get("lastScaleTime"), "lastScale": status.get("lastScale")} \
            if written else {}
        return Actuation(None, f"scaling failed: {exc}", restored, exc, version)
    return Actuation(replicas, why, record, resource_version=version)
