"""The engine's batch limit in a workload's pod template: where it is, its value, a new
template with it changed, and whether the workload is rolling out. Pure functions of the
object as the API server returns it; ``kube`` reads and writes.

The operator changes a value the template already sets (a flag in a container's ``command``
or ``args``, ``--flag=N`` or ``--flag N``, or an environment variable); it never adds a flag,
since it cannot know how an entrypoint passes its arguments on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

#: Per engine: command-line flags, then environment variables, that set its batch limit.
#: vLLM ``--max-num-seqs``; SGLang ``--max-running-requests``; TGI's launcher
#: ``--max-batch-size`` / ``--max-concurrent-requests`` (also read from ``MAX_BATCH_SIZE`` /
#: ``MAX_CONCURRENT_REQUESTS``); TensorRT-LLM's ``trtllm-serve --max_batch_size``.
FLAGS: dict[str, tuple[str, ...]] = {
    "vllm": ("--max-num-seqs",),
    "sglang": ("--max-running-requests",),
    "tgi": ("--max-batch-size", "--max-concurrent-requests"),
    "tensorrt-llm": ("--max_batch_size",),
}
ENV: dict[str, tuple[str, ...]] = {"tgi": ("MAX_BATCH_SIZE", "MAX_CONCURRENT_REQUESTS")}


@dataclass(frozen=True)
class Knob:
    """Where the batch limit is set: container index, ``args``/``command``/``env``, the item's
    index there, the flag or variable name, and the value."""

    container: int
    field: str
    index: int
    name: str
    value: int


def _containers(obj: Mapping[str, Any]) -> list:
    return list((((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])


def find(engine: str, obj: Mapping[str, Any]) -> Knob | None:
    """The first place the template sets the engine's batch limit to a whole number."""
    for c, container in enumerate(_containers(obj)):
        if not isinstance(container, dict):
            continue
        for field in ("args", "command"):
            items = container.get(field) or []
            for i, item in enumerate(items):
                if not isinstance(item, str):
                    continue
                for flag in FLAGS.get(engine, ()):
                    if item.startswith(flag + "="):
                        value = _whole(item[len(flag) + 1:])
                    elif item == flag and i + 1 < len(items) and isinstance(items[i + 1], str):
                        value = _whole(items[i + 1])
                    else:
                        continue
                    if value is not None:
                        return Knob(c, field, i, flag, value)
        for i, env in enumerate(container.get("env") or []):
            if isinstance(env, dict) and env.get("name") in ENV.get(engine, ()) and "value" in env:
                value = _whole(str(env["value"]))
                if value is not None:
                    return Knob(c, "env", i, env["name"], value)
    return None


def _whole(text: str) -> int | None:
    text = text.strip().strip('"')
    return int(text) if text.isdigit() and int(text) > 0 else None


def with_limit(obj: Mapping[str, Any], knob: Knob, value: int) -> list:
    """The template's containers with the batch limit at ``knob`` set to ``value``."""
    containers = copy.deepcopy(_containers(obj))
    items = containers[knob.container][knob.field]
    if knob.field == "env":
        items[knob.index]["value"] = str(value)
    elif items[knob.index] == knob.name:
        items[knob.index + 1] = str(value)
    else:
        items[knob.index] = f"{knob.name}={value}"
    return containers


def rolling_out(obj: Mapping[str, Any]) -> bool:
    """Whether the workload has not finished rolling out its current template: the
    controller has not seen the latest generation, or some replicas are not yet updated,
    not yet available, or old ones are still there (Deployments, StatefulSets)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if not status:
        return False
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return True
    want = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
    if "updatedReplicas" in status and int(status.get("updatedReplicas") or 0) < want:
        return True
    if int(status.get("unavailableReplicas") or 0) > 0:
        return True
    if int(status.get("replicas") or 0) > want:
        return True
    revisions = status.get("currentRevision"), status.get("updateRevision")
    return bool(revisions[0] and revisions[1] and revisions[0] != revisions[1])
