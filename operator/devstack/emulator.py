"""A Kubernetes API emulator on loopback: kmock's in-memory server plus what kopf and the
operator need from a real API server.

kmock (pinned) serves discovery, lists, watches and fetches over real HTTP. It keeps no
resourceVersion, uid or generation, does not separate the status subresource, applies
JSON patches without refusing a failed ``test`` op as a conflict, and has no scale
subresource. This subclass adds those, plus ``generateName``, label selectors, ``kind``
on lists, PUT, namespaces, and bounded memory (one version per object, a capped request
log and event store) so that long runs stay flat. It does no schema validation,
defaulting or pruning: the real-API tier covers those.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import itertools
import json
import re
import secrets
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import aiohttp.web
import jsonpatch
import kmock

from ..constants import GROUP, KIND, PLURAL, VERSION

#: Requests kept for inspection (kmock keeps all of them otherwise).
REQUEST_LOG = 2000
#: Events kept per namespace, oldest first out (a real cluster expires them after an hour).
EVENTS_KEPT = 500
#: Watch events kept per resource for watches resuming from a resourceVersion; older
#: versions get 410 Gone, as a real server's compacted etcd history would answer.
WATCH_HISTORY = 5000

CORE = {  # resource -> (kind, namespaced, subresources)
    "v1/namespaces": ("Namespace", False, ()),
    "v1/events": ("Event", True, ()),
    "v1/secrets": ("Secret", True, ()),
    "v1/configmaps": ("ConfigMap", True, ()),
    "apps/v1/deployments": ("Deployment", True, ("status", "scale")),
    "apps/v1/statefulsets": ("StatefulSet", True, ("status", "scale")),
    "v1/services": ("Service", True, ("status",)),
    f"{GROUP}/{VERSION}/{PLURAL}": (KIND, True, ("status",)),
    # kopf's peering (two operator replicas, one active): the chart installs these CRDs.
    "kopf.dev/v1/clusterkopfpeerings": ("ClusterKopfPeering", False, ()),
    "kopf.dev/v1/kopfpeerings": ("KopfPeering", True, ()),
}
# What a real API server in front of this one (the realapi tier's apiextensions-apiserver,
# whose "core" is this emulator) lists and watches at start: served, and empty.
for _plural, _kind in (("mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
                       ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration"),
                       ("validatingadmissionpolicies", "ValidatingAdmissionPolicy"),
                       ("validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding"),
                       ("mutatingadmissionpolicies", "MutatingAdmissionPolicy"),
                       ("mutatingadmissionpolicybindings", "MutatingAdmissionPolicyBinding")):
    CORE[f"admissionregistration.k8s.io/v1/{_plural}"] = (_kind, False, ())
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch (``None`` removes a key; lists and scalars replace)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def label_match(labels: Mapping[str, str], selector: str) -> bool:
    """Equality-based and set-based label selectors (``a=b,c!=d,e,!f,g in (x,y)``)."""
    if not selector:
        return True
    for term in _split_selector(selector):
        term = term.strip()
        if " notin " in term or " in " in term:
            negate = " notin " in term
            key, values = term.split(" notin " if negate else " in ", 1)
            options = {v.strip() for v in values.strip().strip("()").split(",")}
            present = labels.get(key.strip()) in options
            if present == negate:
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def _split_selector(selector: str) -> Iterable[str]:
    depth, start = 0, 0
    for i, ch in enumerate(selector):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            yield selector[start:i]
            start = i + 1
    yield selector[start:]


def _error(status: int, reason: str, message: str, details: dict | None = None) -> aiohttp.web.Response:
    return aiohttp.web.json_response({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                                      "code": status, "reason": reason, "message": message,
                                      "details": details or {}}, status=status)


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator with the API-server bookkeeping kopf and the operator rely on."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._rv = itertools.count(1)
        self.used: set[tuple[str, str, str, str]] = set()
        # Fault injection for the faults tier: (method, path regex, status, times left).
        self.failures: list[list] = []
        self._watch_tasks: set[asyncio.Task] = set()
        self._history: dict[Any, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=WATCH_HISTORY))
        self._forgotten_rv: dict[Any, int] = collections.defaultdict(int)
        self._subresources: dict[Any, tuple[str, ...]] = {}
        self._kinds: dict[Any, str] = {}
        for key, (kind, namespaced, subresources) in CORE.items():
            self.declare(key, kind, namespaced, subresources)

    # --- set-up --------------------------------------------------------------------------
    def declare(self, key: str, kind: str, namespaced: bool = True, subresources: Iterable[str] = ()) -> None:
        """Serve a resource (``group/version/plural``) in discovery, with its subresources."""
        self.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=namespaced, verbs=set(VERBS),
                                                 subresources=set(subresources))
        res = kmock.resource(key)
        self._subresources[res] = tuple(subresources)
        self._kinds[res] = kind

    def _api_version(self, res) -> str:
        return f"{res.group}/{res.version}" if res.group else res.version

    # --- dispatch ------------------------------------------------------------------------
    async def __call__(self, raw_request):
        # kmock's path parser reads /api/v1/namespaces[/NAME] as a namespace prefix and fails.
        parts = raw_request.path.strip("/").split("/")
        if parts[0] == "openapi":  # no OpenAPI documents here; an empty one is a valid answer
            return aiohttp.web.json_response({"paths": {}} if parts[-1] == "v3" else
                                             {"swagger": "2.0", "info": {"title": "emulator", "version": "v1"},
                                              "paths": {}})
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            return await self._namespaces(raw_request, parts[3] if len(parts) == 4 else None)
        return await super().__call__(raw_request)

    async def _namespaces(self, raw_request, name: str | None):
        res = kmock.resource("v1/namespaces")
        async with self._lock:
            items = [obj.raw for (r, _, n), obj in list(self._objects.items())
                     if r == res and not obj.deleted and (name is None or n == name)]
        if raw_request.method != "GET":
            return _error(405, "MethodNotAllowed", "namespaces are fixed when the emulator starts")
        if name is not None:
            return aiohttp.web.json_response(items[0]) if items else \
                _error(404, "NotFound", f'namespaces "{name}" not found')
        if raw_request.query.get("watch") in ("true", "1"):
            response = aiohttp.web.StreamResponse()
            response.content_type = "application/json"
            await response.prepare(raw_request)
            for item in items:
                await response.write(json.dumps({"type": "ADDED", "object": item}).encode() + b"\n")
            if raw_request.query.get("sendInitialEvents") == "true":
                bookmark = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                    "resourceVersion": str(self._latest_rv()), "annotations": {"k8s.io/initial-events-end": "true"}}}
                await response.write(json.dumps({"type": "BOOKMARK", "object": bookmark}).encode() + b"\n")
            timeout = float(raw_request.query.get("timeoutSeconds", 300))
            await asyncio.sleep(timeout)  # namespaces never change here
            return response
        return aiohttp.web.json_response({"apiVersion": "v1", "kind": "NamespaceList",
                                          "metadata": {"resourceVersion": str(self._latest_rv())}, "items": items})

    async def _handle(self, request):  # noqa: C901 - one switch over the API's verbs
        if len(self._requests) > REQUEST_LOG:
            del self._requests[:-REQUEST_LOG // 2]
        res = request.resource
        if res is None or res.plural is None or res not in self._kinds:
            return await super()._handle(request)
        method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
        self._note(request, res, method)
        for rule in self.failures:
            if rule[3] > 0 and rule[0] == method and re.search(rule[1], request.url.path):
                rule[3] -= 1
                return _error(rule[2], "InjectedFault", f"injected {rule[2]} for {method} {request.url.path}")
        try:
            if request.subresource == "scale" and request.name:
                return await self._scale(request, method)
            if request.subresource not in (None, "status"):
                return _error(404, "NotFound", f"subresource {request.subresource!r} is not served")
            if method == "GET" and request.params.get("watch") not in ("true", "1"):
                return await self._read(request)
            if method == "GET":
                return await self._watch(request)
            if method == "POST" and not request.name:
                return aiohttp.web.json_response(await self._create(request), status=201)
            if method in ("PATCH", "PUT") and request.name:
                return aiohttp.web.json_response(await self._change(request, method))
            if method == "DELETE" and request.name:
                return aiohttp.web.json_response(await self._delete(request))
        except ApiError as exc:
            return _error(exc.status, exc.reason, exc.message, exc.details)
        return _error(405, "MethodNotAllowed", f"{method} is not supported on {request.url.path}")

    def _note(self, request, res, method: str) -> None:
        """Record (client, apiGroup, resource[/subresource], RBAC verb): what each client used."""
        agent = (request.headers.get("User-Agent") or "unknown").split("/")[0]
        watch = request.params.get("watch") in ("true", "1")
        verb = {"GET": "watch" if watch else ("get" if request.name else "list"), "POST": "create",
                "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(method, method.lower())
        resource = res.plural + (f"/{request.subresource}" if request.subresource and request.name else "")
        self.used.add((agent, res.group, resource, verb))

    # --- reads ---------------------------------------------------------------------------
    async def _read(self, request):
        res = request.resource
        if request.name:
            obj = self._get(res, request.namespace, request.name)
            return aiohttp.web.json_response(obj)
        selector = request.params.get("labelSelector", "")
        field_selector = request.params.get("fieldSelector", "")
        items = []
        async with self._lock:
            for (r, ns, _name), obj in list(self._objects.items()):
                if r != res or obj.deleted or (request.namespace and ns != request.namespace):
                    continue
                raw = obj.raw
                if not label_match(raw.get("metadata", {}).get("labels") or {}, selector):
                    continue
                if field_selector and not _field_match(raw, field_selector):
                    continue
                items.append(raw)
            version = self._latest_rv()  # with the snapshot: a watch from it misses nothing
        return aiohttp.web.json_response({"apiVersion": self._api_version(res), "kind": self._kinds[res] + "List",
                                          "metadata": {"resourceVersion": str(version)}, "items": items})

    async def _watch(self, request):
        """A watch as a real server streams it: JSON lines, label selectors, and with
        ``sendInitialEvents=true`` the current objects then the bookmark that ends them."""
        res, selector = request.resource, request.params.get("labelSelector", "")
        response = aiohttp.web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request._raw_request)
        initial = request.params.get("sendInitialEvents") == "true"
        timeout = float(request.params.get("timeoutSeconds") or 1800)

        def wanted(obj: dict) -> bool:
            meta = obj.get("metadata", {})
            return ((not request.namespace or meta.get("namespace") == request.namespace)
                    and (not request.name or meta.get("name") == request.name)
                    and label_match(meta.get("labels") or {}, selector))

        since = request.params.get("resourceVersion") or ""
        resume = not initial and since not in ("", "0")

        async def send(event: dict) -> None:
            await response.write(json.dumps(event).encode() + b"\n")

        async def stream():
            async with self._lock:  # the mark and the snapshot together: no event falls between them
                expired = resume and (not since.isdigit() or int(since) < self._forgotten_rv[res])
                if not expired:
                    mark = await self._buses[res].mark()
                    current = [event for rv, event in self._history[res] if rv > int(since)] if resume else \
                        [{"type": "ADDED", "object": obj.raw}
                         for (r, _, _), obj in list(self._objects.items()) if r == res and not obj.deleted]
                    version = self._latest_rv()
            if expired:
                gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired",
                        "code": 410, "message": f"too old resource version: {since}"}
                await send({"type": "ERROR", "object": gone})
                return
            for event in current:  # a resumed watch replays what it missed; a new one starts from now
                if wanted(event["object"]):
                    await send(event)
            if initial:
                bookmark = {"apiVersion": self._api_version(res), "kind": self._kinds[res],
                            "metadata": {"resourceVersion": str(version),
                                         "annotations": {"k8s.io/initial-events-end": "true"}}}
                await send({"type": "BOOKMARK", "object": bookmark})
            async for event in mark:
                if wanted(event.get("object") or {}):
                    await send(event)

        task = asyncio.ensure_future(asyncio.wait_for(stream(), timeout))
        self._watch_tasks.add(task)
        try:
            await task
        except (asyncio.TimeoutError, ConnectionResetError, asyncio.CancelledError):
            pass  # timed out, the client left, or cut_watches() ended it
        finally:
            self._watch_tasks.discard(task)
        return response

    def fail(self, method: str, path_regex: str, status: int, times: int) -> None:
        """Answer the next ``times`` matching requests with ``status`` (faults tier)."""
        self.failures.append([method.upper(), path_regex, status, times])

    async def cut_watches(self) -> int:
        """End every open watch stream mid-way, as a load balancer or a restart would."""
        tasks = list(self._watch_tasks)
        for task in tasks:
            task.cancel()
        return len(tasks)

    def _get(self, res, namespace, name) -> dict:
        key = (res, namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            raise ApiError(404, "NotFound", f'{self._kinds[res].lower()}s "{name}" not found',
                           {"name": name, "kind": res.plural})
        return self._objects[key].raw

    # --- writes --------------------------------------------------------------------------
    def _latest_rv(self) -> int:
        """The newest resourceVersion given out (what a list or a bookmark reports)."""
        value = next(self._rv)
        self._rv = itertools.count(value)
        return value - 1

    def _stamp(self, body: dict, res, old: dict | None) -> dict:
        meta = body.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._rv))
        body["apiVersion"], body["kind"] = self._api_version(res), self._kinds[res]
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
        else:
            for key in ("uid", "creationTimestamp", "deletionTimestamp"):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
                else:
                    meta.pop(key, None)
            changed = {k: v for k, v in body.items() if k not in ("metadata", "status", "apiVersion", "kind")} != \
                      {k: v for k, v in old.items() if k not in ("metadata", "status", "apiVersion", "kind")}
            meta["generation"] = int(old["metadata"].get("generation", 1)) + (1 if changed else 0)
        return body

    async def _store(self, res, namespace, name, body: dict, event: str) -> None:
        """Keep one version only (kmock would keep the whole history) and tell watchers;
        a DELETED event carries the last state."""
        key = (res, namespace, name)
        if event == "DELETED":
            body = copy.deepcopy(body)
            body["metadata"]["resourceVersion"] = str(next(self._rv))  # a deletion is a change too
            if key in self._objects:
                del self._objects[key]
        else:
            self._objects[key] = body
        history = self._history[res]
        if len(history) == history.maxlen:
            self._forgotten_rv[res] = history[0][0]
        history.append((int(body["metadata"]["resourceVersion"]), {"type": event, "object": body}))
        await self._buses[res].put({"type": event, "object": body})

    async def _create(self, request) -> dict:
        res, body = request.resource, request.data
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be a JSON object")
        body = copy.deepcopy(body)
        meta = body.setdefault("metadata", {})
        namespaced = self.resources[res].namespaced
        namespace = (request.namespace or meta.get("namespace")) if namespaced else None
        if namespaced:
            if not namespace:
                raise ApiError(400, "BadRequest", "a namespace is required")
            meta["namespace"] = namespace
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", "metadata.name: Required value: name or generateName is required",
                               {"causes": [{"field": "metadata.name", "reason": "FieldValueRequired"}]})
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if "status" in self._subresources.get(res, ()):
            body.pop("status", None)
        async with self._lock:
            key = (res, namespace, meta["name"])
            if key in self._objects and not self._objects[key].deleted:
                raise ApiError(409, "AlreadyExists", f'{res.plural} "{meta["name"]}" already exists')
            self._stamp(body, res, None)
            await self._store(res, namespace, meta["name"], body, "ADDED")
            if res.plural == "events":
                self._trim_events(namespace)
        return body

    def _trim_events(self, namespace) -> None:
        keys = [k for k in self._objects if k[0].plural == "events" and k[1] == namespace]
        for key in keys[:-EVENTS_KEPT]:
            del self._objects[key]

    async def _change(self, request, method: str) -> dict:
        res, namespace, name = request.resource, request.namespace, request.name
        status_only = request.subresource == "status"
        separate = "status" in self._subresources.get(res, ())
        content_type = request.headers.get("Content-Type", "application/merge-patch+json").split(";")[0]
        data = request.data
        async with self._lock:
            old = self._get(res, namespace, name)
            if method == "PUT":
                if not isinstance(data, dict):
                    raise ApiError(400, "BadRequest", "the body must be a JSON object")
                new = copy.deepcopy(data)
                precondition = new.get("metadata", {}).get("resourceVersion")
            elif content_type == "application/json-patch+json":
                if not isinstance(data, list):
                    raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
                try:
                    new = jsonpatch.apply_patch(copy.deepcopy(old), data)
                except jsonpatch.JsonPatchTestFailed as exc:
                    raise ApiError(422, "Invalid", f"the server rejected our request: {exc}") from None
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                    raise ApiError(422, "Invalid", f"the JSON patch cannot be applied: {exc}") from None
                precondition = None
            else:  # merge patch; strategic merge is treated as a merge (no list-merge keys here)
                if not isinstance(data, dict):
                    raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
                precondition = (data.get("metadata") or {}).get("resourceVersion")
                new = merge_patch(old, data)
            if precondition and str(precondition) != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} "{name}": the object '
                               "has been modified; please apply your changes to the latest version and try again")
            if status_only:  # the status subresource changes nothing but status
                new = dict(copy.deepcopy(old), status=new.get("status"))
                if new["status"] is None:
                    del new["status"]
            elif separate:  # and the main resource never changes status
                new = {k: v for k, v in new.items() if k != "status"}
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
            new.setdefault("metadata", {})
            for key in ("name", "namespace"):
                if key in old["metadata"]:
                    new["metadata"][key] = old["metadata"][key]
            self._stamp(new, res, old)
            meta = new["metadata"]
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                await self._store(res, namespace, name, new, "DELETED")
                return new
            await self._store(res, namespace, name, new, "MODIFIED")
            return new

    async def _delete(self, request) -> dict:
        res, namespace, name = request.resource, request.namespace, request.name
        async with self._lock:
            old = copy.deepcopy(self._get(res, namespace, name))
            if old["metadata"].get("finalizers"):
                if not old["metadata"].get("deletionTimestamp"):
                    old["metadata"]["deletionTimestamp"] = _now()
                    old["metadata"]["resourceVersion"] = str(next(self._rv))
                    await self._store(res, namespace, name, old, "MODIFIED")
                return old
            await self._store(res, namespace, name, old, "DELETED")
            return old

    # --- scale subresource ---------------------------------------------------------------
    async def _scale(self, request, method: str):
        res, namespace, name = request.resource, request.namespace, request.name
        if "scale" not in self._subresources.get(res, ()):
            return _error(404, "NotFound", f"{res.plural} has no scale subresource")
        async with self._lock:
            obj = self._get(res, namespace, name)
            if method in ("PATCH", "PUT"):
                data = request.data if isinstance(request.data, dict) else {}
                replicas = (data.get("spec") or {}).get("replicas")
                if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                    raise ApiError(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}: must be a "
                                   "non-negative integer",
                                   {"causes": [{"field": "spec.replicas", "reason": "FieldValueInvalid"}]})
                new = copy.deepcopy(obj)
                new.setdefault("spec", {})["replicas"] = replicas
                self._stamp(new, res, obj)
                await self._store(res, namespace, name, new, "MODIFIED")
                obj = new
            elif method != "GET":
                return _error(405, "MethodNotAllowed", f"{method} on scale")
        selector = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
        return aiohttp.web.json_response({
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion")},
            "spec": {"replicas": int(obj.get("spec", {}).get("replicas", 1))},
            "status": {"replicas": int(obj.get("status", {}).get("replicas", 0)),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))},
        })


class ApiError(Exception):
    """An API error answered as a Kubernetes ``Status`` object."""

    def __init__(self, status: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.reason, self.message, self.details = status, reason, message, details


def _field_match(obj: dict, selector: str) -> bool:
    for term in selector.split(","):
        if "=" not in term:
            continue
        negate = "!=" in term
        path, value = term.replace("!=", "=").replace("==", "=").split("=", 1)
        current: Any = obj
        for part in path.strip().split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if (str(current) == value.strip()) == negate:
            return False
    return True


class EmulatorServer:
    """The emulator on a loopback port, in a thread of its own with its own event loop.

    ``with EmulatorServer() as api: api.url`` -- also writes a kubeconfig for clients
    (kopf, the kubernetes client, kubectl) when given a path.
    """

    def __init__(self, namespaces: Iterable[str] = ("default",), port: int = 0):
        self.namespaces = tuple(namespaces)
        self.port = port
        self.url = ""
        self.emulator: Emulator | None = None
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> "EmulatorServer":
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error:
            raise RuntimeError(f"the Kubernetes API emulator did not start: {self._error}")
        return self

    def __exit__(self, *exc) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to __enter__
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        emulator = Emulator()
        self.emulator = emulator
        for namespace in self.namespaces:
            emulator.objects[kmock.resource("v1/namespaces"), None, namespace] = {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace, "uid": str(uuid.uuid4()), "resourceVersion": "1"}}
        async with emulator, kmock.Server(emulator, port=self.port) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def call(self, coroutine_fn, *args):
        """Run ``coroutine_fn(emulator, *args)`` on the emulator's loop (for inspection)."""
        return asyncio.run_coroutine_threadsafe(coroutine_fn(self.emulator, *args), self._loop).result(30)

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """A kubeconfig pointing at the emulator (plain HTTP on loopback, no credentials)."""
        path = Path(path)
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "ala-emulator",
            "clusters": [{"name": "ala-emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "ala-emulator", "user": {"token": "emulator"}}],
            "contexts": [{"name": "ala-emulator",
                          "context": {"cluster": "ala-emulator", "user": "ala-emulator", "namespace": namespace}}],
        }
        path.write_text(json.dumps(config, indent=2))
        return path
