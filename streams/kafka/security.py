"""One security configuration for every Kafka client, named as Kafka names it.

Where it comes from: ``kafka.librdkafka`` (``security.protocol``, ``sasl.mechanism``,
``sasl.username``, ``sasl.password``, ``ssl.ca.location``, ``ssl.certificate.location``,
``ssl.key.location``, ``ssl.key.password``, ``ssl.endpoint.identification.algorithm``), with
any of them read from a file instead through ``kafka.secret_files`` (a mounted secret), and for
OAUTHBEARER a token provider named by ``kafka.oauth_token_provider``.

Who uses it: the confluent-kafka clients (publish, tail, replay, topic checks) take the resolved
map as it is (``client_config``); the Faust worker's aiokafka clients (consumer, producer, the
transactional producers of exactly_once, topic creation) get the same security translated into
Faust credentials (``faust_credentials``): aiokafka has its own option names and wants an
``ssl.SSLContext``, so the CA, the client certificate and hostname checking become one here.

What aiokafka cannot do: re-authenticate a connection (aio-libs/aiokafka#1105). With
OAUTHBEARER a connection keeps the token it opened with; a broker with
``connections.max.reauth.ms`` closes it when the token's session ends, aiokafka reconnects and
asks the provider again, so the worker sees a reconnect, never a stale token refused mid-stream.

Secrets (``SECRET_KEYS``) never leave this module except into a client: ``redacted`` masks them
for anything printed, and no error message here quotes a value.
"""

from __future__ import annotations

import asyncio
import importlib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiokafka.abc import AbstractTokenProvider

from streams.config import KafkaSettings
from streams.errors import UsageError

PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
SECRET_KEYS: Final = frozenset(
    {
        "sasl.password",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl.keystore.password",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
    }
)
MASK: Final = "********"

TokenProvider = Callable[[], tuple[str, float]]  # () -> (token, expiry as epoch seconds)


class SecurityConfigError(UsageError):
    """Security settings that cannot work (unknown protocol or mechanism, a missing file)."""


def is_secret(key: str) -> bool:
    """Whether a librdkafka setting holds a secret."""
    return key in SECRET_KEYS or "password" in key or "secret" in key


def redacted(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every secret value masked (for logs, `darkroom config`, errors)."""
    return {k: MASK if is_secret(k) else v for k, v in config.items()}


def client_config(kafka: KafkaSettings) -> dict[str, Any]:
    """The librdkafka settings of every confluent-kafka client: ``kafka.librdkafka`` with the
    secrets read from ``kafka.secret_files`` and, for OAUTHBEARER, the token callback."""
    security = KafkaSecurity.from_settings(kafka)
    config: dict[str, Any] = {**security.settings}
    if security.token_provider is not None:
        provider = security.token_provider
        config["oauth_cb"] = lambda _config: provider()
    return config


@dataclass(frozen=True)
class KafkaSecurity:
    """The resolved security of one set of settings (secrets included: never print it)."""

    settings: Mapping[str, str]  # librdkafka names, secrets read from their files
    token_provider: TokenProvider | None = None

    @classmethod
    def from_settings(cls, kafka: KafkaSettings) -> KafkaSecurity:
        """Resolve and check ``kafka``'s security settings (SecurityConfigError if they
        cannot work)."""
        settings = dict(kafka.librdkafka)
        if "sasl.mechanisms" in settings:  # librdkafka's older name for the same thing
            settings.setdefault("sasl.mechanism", settings.pop("sasl.mechanisms"))
        for key, path in kafka.secret_files.items():
            if key in settings:
                raise SecurityConfigError(
                    f"kafka.secret_files and kafka.librdkafka both set {key!r}: keep one"
                )
            settings[key] = _read_secret(key, path)
        security = cls(settings, _load_provider(kafka.oauth_token_provider))
        security.check()
        return security

    def __repr__(self) -> str:
        return f"KafkaSecurity({redacted(self.settings)})"

    @property
    def protocol(self) -> str:
        """security.protocol, upper case (PLAINTEXT when unset)."""
        return self.settings.get("security.protocol", "PLAINTEXT").upper()

    @property
    def mechanism(self) -> str | None:
        """sasl.mechanism for a SASL protocol, else None."""
        if not self.protocol.startswith("SASL_"):
            return None
        return self.settings.get("sasl.mechanism", "GSSAPI").upper()

    @property
    def uses_tls(self) -> bool:
        """Whether connections are TLS (SSL or SASL_SSL)."""
        return self.protocol in ("SSL", "SASL_SSL")

    def check(self) -> None:
        """SecurityConfigError naming what cannot work."""
        if self.protocol not in PROTOCOLS:
            raise SecurityConfigError(
                f"unknown security.protocol {self.protocol!r}; use one of {', '.join(PROTOCOLS)}"
            )
        mechanism = self.mechanism
        if mechanism is not None and mechanism not in MECHANISMS:
            raise SecurityConfigError(
                f"unsupported sasl.mechanism {mechanism!r}; Darkroom supports "
                f"{', '.join(MECHANISMS)}"
            )
        if mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            missing = [k for k in ("sasl.username", "sasl.password") if not self.settings.get(k)]
            if missing:
                raise SecurityConfigError(
                    f"sasl.mechanism {mechanism} needs {' and '.join(missing)} (in "
                    "kafka.librdkafka, or the password in kafka.secret_files)"
                )
        if mechanism == "OAUTHBEARER" and self.token_provider is None:
            raise SecurityConfigError(
                "sasl.mechanism OAUTHBEARER needs kafka.oauth_token_provider "
                "('module:callable' returning (token, expiry epoch seconds))"
            )
        for key in ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location"):
            path = self.settings.get(key)
            if path and not Path(path).is_file():
                raise SecurityConfigError(f"{key}={path}: no such file")
        if bool(self.settings.get("ssl.certificate.location")) != bool(
            self.settings.get("ssl.key.location")
        ):
            raise SecurityConfigError(
                "mutual TLS needs both ssl.certificate.location and ssl.key.location"
            )

    @property
    def principal(self) -> str:
        """Who the broker will take this client for, as ACLs name it (best effort: a
        certificate's principal depends on the broker's ssl.principal.mapping.rules)."""
        if self.mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            return f"User:{self.settings['sasl.username']}"
        certificate = self.settings.get("ssl.certificate.location")
        if certificate:
            return f"the principal of certificate {_subject(certificate)}"
        if self.mechanism == "OAUTHBEARER":
            return "the token's principal"
        return "User:ANONYMOUS"

    def describe(self) -> str:
        """How this client authenticates, in a few words (no secrets)."""
        if self.mechanism is not None:
            return f"{self.protocol} {self.mechanism} as {self.principal}"
        if self.settings.get("ssl.certificate.location"):
            return f"{self.protocol} (mutual TLS) as {self.principal}"
        return self.protocol

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for aiokafka: the CA (else the system's), the client certificate,
        hostname checking unless ssl.endpoint.identification.algorithm is none."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.settings.get("ssl.ca.location"))
        if self.settings.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
            context.check_hostname = False
        certificate = self.settings.get("ssl.certificate.location")
        if certificate:
            try:
                context.load_cert_chain(
                    certificate,
                    self.settings["ssl.key.location"],
                    self.settings.get("ssl.key.password"),
                )
            except ssl.SSLError as exc:
                raise SecurityConfigError(
                    f"cannot use the client certificate {certificate} with key "
                    f"{self.settings['ssl.key.location']} ({exc.reason or 'wrong key password?'})"
                ) from None
        return context

    def faust_credentials(self) -> Any:
        """faust.*Credentials for the worker's aiokafka clients, or None for PLAINTEXT."""
        import faust  # the worker's dependency; the confluent-only commands never import it

        context = self.ssl_context()
        mechanism = self.mechanism
        if mechanism is None:
            return faust.SSLCredentials(context) if context is not None else None
        if mechanism == "OAUTHBEARER":
            assert self.token_provider is not None  # check() made sure
            return faust.OAuthCredentials(
                oauth_cb=_AiokafkaTokens(self.token_provider), ssl_context=context
            )
        return faust.SASLCredentials(
            username=self.settings["sasl.username"],
            password=self.settings["sasl.password"],
            mechanism=mechanism,
            ssl_context=context,
        )


def _read_secret(key: str, path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecurityConfigError(
            f"kafka.secret_files[{key!r}]: cannot read {path} ({exc.strerror})"
        ) from None
    value = text.strip()  # a trailing newline is never part of a password
    if not value:
        raise SecurityConfigError(f"kafka.secret_files[{key!r}]: {path} is empty")
    return value


def _load_provider(spec: str | None) -> TokenProvider | None:
    if not spec:
        return None
    module_name, _, attribute = spec.partition(":")
    try:
        provider = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SecurityConfigError(
            f"kafka.oauth_token_provider {spec!r} cannot be loaded ({exc}); "
            "expected 'module:callable'"
        ) from None
    if not callable(provider):
        raise SecurityConfigError(f"kafka.oauth_token_provider {spec!r} is not callable")
    return provider  # type: ignore[no-any-return]


def _subject(certificate: str) -> str:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(certificate).read_bytes())
    except (OSError, ValueError):
        return certificate
    return cert.subject.rfc4514_string()


class _AiokafkaTokens(AbstractTokenProvider):  # type: ignore[misc]
    """aiokafka's token-provider interface (``async token()``) over the same provider the
    confluent clients call; the provider runs in a thread (it may make an HTTP request)."""

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider

    async def token(self) -> str:
        token, expiry = await asyncio.to_thread(self._provider)
        if expiry <= time.time():
            raise SecurityConfigError("kafka.oauth_token_provider returned an expired token")
        return token

    def extensions(self) -> dict[str, str]:
        return {}
