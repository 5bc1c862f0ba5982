"""The Kubernetes calls the refit makes, through the official client: the target's scale
subresource, annotations on the target, and Secrets holding Prometheus credentials.

Any kind with a scale subresource can be a target; its plural is found by discovery
once per group/version and cached. Failures become ``TargetNotFound`` (404) or
``ClusterError`` (anything else), naming the object.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import Any

import kubernetes
import urllib3

from . import batchknob
from .constants import GROUP, KIND, PLURAL, VERSION
from .shared import Secret


class ClusterError(Exception):
    """The API server refused or failed a call (the message names the object)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TargetNotFound(ClusterError):
    """The target workload (or the Secret) does not exist."""


class StaleWrite(ClusterError):
    """A conditional write refused: the object changed since the resourceVersion given."""


class KubeCluster:
    """A ``Cluster`` over a ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client: kubernetes.client.ApiClient | None = None):
        self.api = api_client or kubernetes.client.ApiClient()
        self._plurals: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> "KubeCluster":
        """In-cluster service account if there is one, else the kubeconfig (``KUBECONFIG``,
        read now: the client library reads it once, at import)."""
        config = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None,
                                               client_configuration=config)
        return cls(kubernetes.client.ApiClient(config))

    # --- the Cluster protocol ---------------------------------------------------------------
    def get_scale(self, namespace: str, api_version: str, kind: str, name: str) -> tuple[int, int]:
        """(desired, ready) replicas (see ``workload``)."""
        desired, ready, _ = self.workload(namespace, api_version, kind, name)
        return desired, ready

    def workload(self, namespace: str, api_version: str, kind: str, name: str) -> tuple[int, int, str | None]:
        """(desired, ready, template): desired from the scale subresource, ready from the
        object's ``status.readyReplicas`` (Deployments, StatefulSets; absent means zero when the
        status reports replicas at all), else the scale's observed replicas; ``template``
        fingerprints the pod template's container images (None without a template): an
        engine upgrade changes it."""
        base = self._path(namespace, api_version, kind, name)
        scale = self._call("GET", base + "/scale", what=f"{kind} {namespace}/{name}")
        desired = int((scale.get("spec") or {}).get("replicas") or 0)
        obj = self._call("GET", base, what=f"{kind} {namespace}/{name}")
        status = obj.get("status") or {}
        if "readyReplicas" in status:
            ready = status["readyReplicas"]
        elif any(k in status for k in ("replicas", "availableReplicas", "updatedReplicas", "observedGeneration")):
            ready = 0  # Kubernetes omits readyReplicas when it is zero; the workload reports the others
        else:
            ready = (scale.get("status") or {}).get("replicas", 0)
        return desired, int(ready or 0), template_fingerprint(obj)

    def engine_batch(self, namespace: str, api_version: str, kind: str, name: str,
                     engine: str) -> tuple[int | None, bool]:
        """(the engine's batch limit in the pod template or None, whether it is rolling out)."""
        obj = self._call("GET", self._path(namespace, api_version, kind, name), what=f"{kind} {namespace}/{name}")
        knob = batchknob.find(engine, obj)
        return (knob.value if knob else None), batchknob.rolling_out(obj)

    def set_engine_batch(self, namespace: str, api_version: str, kind: str, name: str, engine: str,
                         value: int) -> int:
        """Set the engine's batch limit in the pod template (the workload rolls out as it
        does for any template change); returns the value it replaced. The write carries the
        resourceVersion read, so a template edited meanwhile is not overwritten."""
        what = f"{kind} {namespace}/{name}"
        obj = self._call("GET", self._path(namespace, api_version, kind, name), what=what)
        knob = batchknob.find(engine, obj)
        if knob is None:
            raise ClusterError(f"{what}: no {', '.join(batchknob.FLAGS.get(engine, ()))} in its pod template")
        containers = batchknob.with_limit(obj, knob, value)
        self._call("PATCH", self._path(namespace, api_version, kind, name), what=what,
                   body={"metadata": {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion")},
                         "spec": {"template": {"spec": {"containers": containers}}}})
        return knob.value

    def set_scale(self, namespace: str, api_version: str, kind: str, name: str, replicas: int) -> None:
        self._call("PATCH", self._path(namespace, api_version, kind, name) + "/scale",
                   body={"spec": {"replicas": int(replicas)}}, what=f"{kind} {namespace}/{name}")

    def annotate(self, namespace: str, api_version: str, kind: str, name: str,
                 annotations: dict[str, str | None]) -> None:
        self._call("PATCH", self._path(namespace, api_version, kind, name),
                   body={"metadata": {"annotations": annotations}}, what=f"{kind} {namespace}/{name}")

    def patch_resource(self, namespace: str, name: str, patch: dict, attempts: int = 4,
                       backoff_s: float = 0.5, missing_ok: bool = True,
                       resource_version: str | None = None) -> str | None:
        """Merge a handler's patch into an LLMDeployment: ``status`` through the status
        subresource, ``metadata`` through the object. With ``resource_version`` the status
        write is conditional: a changed object refuses it with ``StaleWrite`` (never
        retried: the patch was computed from what is now old). Other conflicts and server
        errors are retried with backoff; a 404 (the resource is gone) is an error only
        without ``missing_ok``. Returns the resourceVersion after the status write."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"
        status_body = {"status": patch["status"]} if patch.get("status") else None
        if status_body and resource_version:
            status_body["metadata"] = {"resourceVersion": str(resource_version)}
        parts = [(path + "/status", status_body) if status_body else None,
                 (path, {"metadata": patch["metadata"]}) if patch.get("metadata") else None]
        version = None
        for target, body in filter(None, parts):
            for attempt in range(attempts):
                try:
                    answer = self._call("PATCH", target, body=body, what=f"{KIND} {namespace}/{name}")
                    if target.endswith("/status"):
                        version = (answer.get("metadata") or {}).get("resourceVersion")
                    break
                except TargetNotFound:
                    if missing_ok:
                        return None
                    raise
                except ClusterError as exc:
                    if exc.status == 409 and target.endswith("/status") and resource_version:
                        raise StaleWrite(str(exc), 409) from None
                    retriable = exc.status is None or exc.status in (409, 429) or exc.status >= 500
                    if not retriable or attempt == attempts - 1:
                        raise
                    time.sleep(backoff_s * 2 ** attempt)
        return version

    def patch_status(self, namespace: str, name: str, status: dict,
                     resource_version: str | None = None) -> str | None:
        """Merge ``status`` into an LLMDeployment's status now (a record that must land
        before an action, such as the scale it describes); conditional on
        ``resource_version`` when given. Returns the new resourceVersion."""
        return self.patch_resource(namespace, name, {"status": status}, missing_ok=False,
                                   resource_version=resource_version)

    def secret(self, namespace: str, name: str) -> Secret:
        """The Secret's labels and data, decoded (held in memory only, never logged)."""
        obj = self._call("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}", what=f"Secret {namespace}/{name}")
        out = {}
        for key, value in (obj.get("data") or {}).items():
            try:
                out[key] = base64.b64decode(value).decode()
            except (ValueError, UnicodeDecodeError):
                raise ClusterError(f"Secret {namespace}/{name} key {key!r} is not base64 text") from None
        out.update(obj.get("stringData") or {})
        return Secret(dict((obj.get("metadata") or {}).get("labels") or {}), out)

    def config_map(self, namespace: str, name: str) -> dict[str, str]:
        """A ConfigMap's data (a model's config.json, ``spec.modelFacts.configMapRef``)."""
        obj = self._call("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}",
                         what=f"ConfigMap {namespace}/{name}")
        data = obj.get("data") or {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    # --- helpers --------------------------------------------------------------------------
    def _path(self, namespace: str, api_version: str, kind: str, name: str) -> str:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        return f"{prefix}/namespaces/{namespace}/{self._plural(api_version, kind)}/{name}"

    def _plural(self, api_version: str, kind: str) -> str:
        key = (api_version, kind)
        with self._lock:
            if key in self._plurals:
                return self._plurals[key]
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        listing = self._call("GET", prefix, what=f"API group {api_version}")
        for resource in listing.get("resources") or []:
            if resource.get("kind") == kind and "/" not in resource.get("name", ""):
                with self._lock:
                    self._plurals[key] = resource["name"]
                return resource["name"]
        raise TargetNotFound(f"the API server does not serve kind {kind} in {api_version}", 404)

    def _call(self, method: str, path: str, body: Any = None, what: str = "") -> dict:
        headers = {"Accept": "application/json"}
        if method == "PATCH":
            headers["Content-Type"] = "application/merge-patch+json"
        what = what or path
        try:
            request = self.api.param_serialize(method, path, header_params=headers, body=body,
                                               auth_settings=["BearerToken"])
            response = self.api.call_api(*request, _request_timeout=10)
            response.read()
        except kubernetes.client.exceptions.ApiException as exc:
            error = TargetNotFound if exc.status == 404 else ClusterError
            raise error(f"{method} {what}: {exc.status} {exc.reason}", exc.status) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # refused, reset, timed out
            raise ClusterError(f"{method} {what}: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status < 300:
            error = TargetNotFound if response.status == 404 else ClusterError
            raise error(f"{method} {what}: {response.status} {_reason(response.data)}", response.status)
        try:
            data = json.loads(response.data or b"{}")
        except ValueError:
            raise ClusterError(f"{method} {what}: the API server answered with something other than JSON") from None
        return data if isinstance(data, dict) else {}


def _reason(raw: bytes | None) -> str:
    try:
        status = json.loads(raw or b"{}")
        return f"{status.get('reason', '')}: {status.get('message', '')}"[:300]
    except ValueError:
        return ""


def template_fingerprint(obj: dict) -> str | None:
    """The images of a workload's pod template (containers and init containers), as one
    text: what identifies the engine version serving. None when the object has no template."""
    template = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    images = sorted(f"{c.get('name', '')}={c.get('image', '')}"
                    for key in ("initContainers", "containers") for c in template.get(key) or [] if isinstance(c, dict))
    return ",".join(images) or None
