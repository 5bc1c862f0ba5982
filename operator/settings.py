"""Operator settings: environment variables prefixed ALA_ become one frozen object,
built once at start and logged once (secrets never; there are none in env)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Mapping

PREFIX = "ALA_"


@dataclass(frozen=True)
class Settings:
    """What the operator process needs; per-deployment choices live in the resource."""

    model_file: str | None = None
    namespace: str | None = None
    metrics_port: int = 8080
    health_port: int = 8081
    bind_address: str = "0.0.0.0"
    timer_seconds: float = 10.0
    random_state: int = 0
    log_level: str = "INFO"
    #: kopf peering object shared by the operator's replicas (one works, the others wait
    #: and take over when it stops); empty: standalone, for a single replica.
    peering: str = ""
    #: This replica's priority in the peering (the highest works); 0: drawn at random at
    #: start, so that two replicas of one Deployment never tie (tied replicas all pause).
    peering_priority: int = 0
    #: Seconds a replica's peering record counts as alive after its last keep-alive: the
    #: longest the others wait to take over from one that died without saying so.
    peering_lifetime: int = 60
    #: URL prefixes resources may query Prometheus under (comma-separated); credentials are
    #: sent only to these, and with none set, to nothing (docs/security.md).
    prometheus_allowed_urls: str = ""
    #: A PEM bundle of CAs that Prometheus servers' certificates are checked against
    #: (instead of the image's system CAs), e.g. a mounted ConfigMap.
    prometheus_ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        values = {}
        for name, field in cls.__dataclass_fields__.items():
            raw = env.get(PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            kind = field.type if isinstance(field.type, type) else str(field.type)
            try:
                if "int" in str(kind):
                    values[name] = int(raw)
                elif "float" in str(kind):
                    values[name] = float(raw)
                else:
                    values[name] = raw
            except ValueError:
                raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
        settings = cls(**values)
        settings.allowed_urls  # noqa: B018 - parsed now, so a bad prefix stops the start with its name
        if settings.prometheus_ca_file and not os.path.isfile(settings.prometheus_ca_file):
            raise ValueError(f"{PREFIX}PROMETHEUS_CA_FILE={settings.prometheus_ca_file!r}: no such file")
        for port in (settings.metrics_port, settings.health_port):
            if not 0 < port < 65536:
                raise ValueError(f"port {port} is out of range")
        if settings.peering_lifetime < 10:
            raise ValueError(f"{PREFIX}PEERING_LIFETIME must be at least 10 seconds (kopf refreshes 5-10 s early)")
        if settings.timer_seconds <= 0:
            raise ValueError(f"{PREFIX}TIMER_SECONDS must be positive")
        if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"{PREFIX}LOG_LEVEL={settings.log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
        return settings

    @property
    def allowed_urls(self) -> tuple[str, ...]:
        from .credentials import parse_prefixes

        return parse_prefixes(self.prometheus_allowed_urls)

    def describe(self) -> str:
        return " ".join(f"{k}={v}" for k, v in asdict(self).items())
