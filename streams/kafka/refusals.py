"""What Kafka refused, said plainly: authentication (who we are) and authorization (a right).

librdkafka reports a refused login or TLS handshake only through its error callback and its
log, while the request that needed the connection just times out ("Broker transport failure").
``ClientErrors`` is that callback; ``raise_refusal`` turns what it kept into one line naming the
cause. ``MissingRightError`` names the principal, the operation and the resource, as an
administrator writes the ACL that grants it.
"""

from __future__ import annotations

import re
import threading

from confluent_kafka import KafkaError

from streams.config import Settings
from streams.errors import AuthenticationError, AuthorizationError
from streams.kafka.security import KafkaSecurity


class KafkaAuthenticationError(AuthenticationError):
    """Kafka refused the credentials, the certificate, or the mechanism."""


class MissingRightError(AuthorizationError):
    """The principal lacks a right (an ACL) that the operation needs."""


def missing_right(
    settings: Settings, operation: str, resource: str, name: str
) -> MissingRightError:
    """``principal User:x lacks OPERATION on RESOURCE 'name'``."""
    principal = KafkaSecurity.from_settings(settings.kafka).principal
    return MissingRightError(
        f"principal {principal} lacks {operation} on {resource} {name!r} "
        "(`darkroom acls ROLE` prints the ACLs each role needs)"
    )


class ClientErrors:
    """librdkafka's ``error_cb``: keeps the errors a failed request does not carry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[KafkaError] = []

    def __call__(self, error: KafkaError) -> None:
        with self._lock:
            self._errors.append(error)

    def raise_refusal(self, settings: Settings) -> None:
        """KafkaAuthenticationError if the broker refused who we are; else nothing."""
        with self._lock:
            errors = list(self._errors)
        for error in errors:
            refusal = refusal_message(error.str(), settings)
            if refusal is not None:
                raise KafkaAuthenticationError(refusal)


def refusal_message(text: str, settings: Settings) -> str | None:
    """One line naming why Kafka refused the connection, from librdkafka's error text, or None
    when the text is not a refusal."""
    security = KafkaSecurity.from_settings(settings.kafka)
    where = f"Kafka at {settings.kafka.bootstrap}"
    lowered = text.lower()
    mechanism = security.mechanism or ""
    if "invalid credentials" in lowered or "authentication failed" in lowered:
        return f"{where}: authentication failed for {_who(security)} ({mechanism})"
    if "unsupported sasl mechanism" in lowered:
        offered = re.search(r"supported mechanisms:\s*([A-Z0-9_,\-]+)", text)
        return f"{where} does not offer sasl.mechanism {mechanism}" + (
            f" (it offers: {offered.group(1).strip()})" if offered else ""
        )
    if "certificate verify failed" in lowered:
        ca = security.settings.get("ssl.ca.location")
        trusted = f"ssl.ca.location={ca}" if ca else "the system's CA certificates"
        host = settings.kafka.bootstrap.split(",")[0].rsplit(":", 1)[0]
        if "hostname" in lowered or "ip address mismatch" in lowered:
            return (
                f"{where}: its certificate does not name {host} (set "
                "ssl.endpoint.identification.algorithm=none only for a test cluster)"
            )
        return f"{where}: certificate for {host} not trusted by {trusted}"
    if "certificate required" in lowered or "alert bad certificate" in lowered:
        return (
            f"{where} requires a client certificate it trusts (ssl.certificate.location, "
            "ssl.key.location)"
        )
    if "ssl handshake failed" in lowered:
        return f"{where}: TLS handshake failed ({text.split('SSL handshake failed:')[-1].strip()})"
    return None


def _who(security: KafkaSecurity) -> str:
    username = security.settings.get("sasl.username")
    return f"user {username!r}" if username else security.principal
