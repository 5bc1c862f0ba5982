"""Which Prometheus a resource may make the operator query, and with whose credentials.

Whoever may create an ``LLMDeployment`` names a URL and, optionally, a Secret of its
namespace. Without limits that is a confused deputy: the operator (which may read
Secrets) would send any Secret's value to any URL. So (docs/security.md):

* credentials are read only from a Secret that carries the label
  ``ala.io/prometheus-credentials: "true"``, set by whoever owns the Secret;
* they are sent only to a URL under a prefix the administrator allowed
  (``ALA_PROMETHEUS_ALLOWED_URLS``, chart value ``prometheus.allowedUrls``); with no
  prefix configured, no credentials are sent anywhere;
* with prefixes configured, every query (with or without credentials) must go to one of
  them, so a resource cannot point the operator at an internal address either.

A refusal is a ``CredentialsRefused`` with a CamelCase reason and a message that says who
can fix it and how; the refit turns it into ``MetricsAvailable=False``.
"""

from __future__ import annotations

import urllib.parse
from typing import Iterable

from .prometheus import PrometheusClient
from .shared import Cluster
from .spec import LLMDeploymentSpec

#: The label a Secret's owner sets to let the operator read it.
CONSENT_LABEL = "ala.io/prometheus-credentials"
ALLOW_ENV = "ALA_PROMETHEUS_ALLOWED_URLS"


class CredentialsRefused(Exception):
    """The resource asked for a query or credentials the operator may not give it."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def parse_prefixes(text: str) -> tuple[str, ...]:
    """Comma- or space-separated URL prefixes; each must be an http(s) URL with a host and
    no credentials, query or fragment (ValueError naming the bad one)."""
    prefixes = []
    for item in text.replace(",", " ").split():
        parts = urllib.parse.urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{ALLOW_ENV}: {item!r} is not an http(s) URL with a host")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(f"{ALLOW_ENV}: {item!r} may not carry credentials, a query or a fragment")
        prefixes.append(item)
    return tuple(prefixes)


def _origin(parts: urllib.parse.SplitResult) -> tuple[str, str, int]:
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower().rstrip("."), parts.port or default


def url_allowed(url: str, prefixes: Iterable[str]) -> bool:
    """Whether ``url`` is under one of ``prefixes``: same scheme, host and port, and a path
    that equals the prefix's or continues it after a ``/`` (``/prom`` admits ``/prom/x``,
    not ``/prometheus``). A URL with user information is never allowed (``https://ok@evil``)."""
    try:
        parts = urllib.parse.urlsplit(url)
        origin = _origin(parts)
    except ValueError:  # a port that is not a number
        return False
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return False
    path = parts.path.rstrip("/")
    for prefix in prefixes:
        allowed = urllib.parse.urlsplit(prefix)
        if _origin(allowed) != origin:
            continue
        base = allowed.path.rstrip("/")
        if not base or path == base or path.startswith(base + "/"):
            return True
    return False


class PrometheusFactory:
    """A client per resource: its URL checked against the allow-list, its credentials read
    from the Secret it names when that Secret consents and the URL is allowed."""

    def __init__(self, cluster: Cluster, allowed_urls: tuple[str, ...] = (), ca_file: str | None = None):
        self.cluster = cluster
        self.allowed_urls = tuple(allowed_urls)
        self.ca_file = ca_file

    def __call__(self, spec: LLMDeploymentSpec, namespace: str) -> PrometheusClient:
        p = spec.prometheus
        if self.allowed_urls and not url_allowed(p.url, self.allowed_urls):
            raise CredentialsRefused("URLNotAllowed", f"spec.prometheus.url {p.url} is not under any URL the "
                                     f"administrator allowed ({ALLOW_ENV}: {', '.join(self.allowed_urls)})")
        token = username = password = None
        if p.secret_name:
            where = f"Secret {namespace}/{p.secret_name}"
            if not self.allowed_urls:
                raise CredentialsRefused("CredentialsNotAllowed", f"spec.prometheus.secretRef names {where}, but "
                                         f"the operator sends credentials only to URLs an administrator allowed, "
                                         f"and none is ({ALLOW_ENV}, chart value prometheus.allowedUrls)")
            secret = self.cluster.secret(namespace, p.secret_name)
            if secret.labels.get(CONSENT_LABEL) != "true":
                raise CredentialsRefused("SecretNotLabelled", f"{where} does not carry the label "
                                         f"{CONSENT_LABEL}=\"true\": the operator reads a Secret only when its "
                                         f"owner has labelled it so")
            data = secret.data
            missing = [k for k in (p.token_key, p.username_key, p.password_key) if k and k not in data]
            if missing:
                raise CredentialsRefused("SecretKeyMissing", f"{where} has no key(s) {', '.join(missing)}")
            token = data.get(p.token_key) if p.token_key else None
            username = data.get(p.username_key) if p.username_key else None
            password = data.get(p.password_key) if p.password_key else None
        return PrometheusClient(p.url, timeout_s=p.timeout_s, verify_tls=p.verify_tls, token=token,
                                username=username, password=password, ca_file=self.ca_file)
