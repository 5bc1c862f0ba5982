"""kopf handlers: thin wrappers that parse, compute with pure functions, and publish.

Built so far: spec validation on create, update and resume. The refit timer, actuation
and the operator's own metrics are the next step (see the operator issue).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import kopf

from .constants import COND_SPEC_VALID, GROUP, PLURAL, VERSION
from .spec import SpecError, parse_spec
from .status import set_condition


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def check_spec(spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
               logger: logging.Logger | kopf.Logger, now: datetime | None = None, **_: Any) -> dict:
    """Set ``SpecValid`` (with the field and reason when invalid); nothing else changes."""
    now = now or datetime.now(timezone.utc)
    generation = meta.get("generation")
    conditions = list((status or {}).get("conditions") or [])
    try:
        parse_spec(dict(spec))
    except SpecError as exc:
        patch.status["conditions"] = set_condition(conditions, COND_SPEC_VALID, False, exc.reason, str(exc),
                                                   now, generation)
        patch.status["observedGeneration"] = generation
        logger.warning("spec rejected: %s (%s)", exc, exc.reason)
        return {"valid": False, "reason": exc.reason}
    patch.status["conditions"] = set_condition(conditions, COND_SPEC_VALID, True, "Valid", "spec accepted",
                                               now, generation)
    patch.status["observedGeneration"] = generation
    return {"valid": True}
