"""One security configuration for every client (streams/kafka/security.py), without a broker:
secrets from files, never printed, checked before any connection, and the same security handed
to the Faust worker's aiokafka clients."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import faust
import pytest

from streams.broker.tls import LocalCA
from streams.config import KafkaSettings
from streams.kafka.security import (
    MASK,
    KafkaSecurity,
    SecurityConfigError,
    client_config,
    redacted,
)

TOKEN_EXPIRY = time.time() + 3600


def fixed_token() -> tuple[str, float]:
    """A token provider for the tests (named as 'module:callable' in the settings)."""
    return "header.payload.sig", TOKEN_EXPIRY


def expired_token() -> tuple[str, float]:
    return "old", time.time() - 1


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA.open(tmp_path / "ca")


def sasl(ca: LocalCA, password_file: Path, mechanism: str = "SCRAM-SHA-512") -> KafkaSettings:
    return KafkaSettings(
        librdkafka={
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": mechanism,
            "sasl.username": "worker",
            "ssl.ca.location": str(ca.ca_file),
        },
        secret_files={"sasl.password": password_file},
    )


def test_a_password_comes_from_its_file_and_is_never_shown(ca: LocalCA, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret-value\n")
    security = KafkaSecurity.from_settings(sasl(ca, password))
    assert security.settings["sasl.password"] == "s3cret-value"  # the newline is not in it
    assert client_config(sasl(ca, password))["sasl.password"] == "s3cret-value"
    assert "s3cret-value" not in repr(security)
    assert redacted(security.settings)["sasl.password"] == MASK
    assert security.describe() == "SASL_SSL SCRAM-SHA-512 as User:worker"


@pytest.mark.parametrize(
    ("librdkafka", "files", "message"),
    [
        ({"security.protocol": "SASL_TLS"}, {}, "unknown security.protocol 'SASL_TLS'"),
        (
            {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-1"},
            {},
            "unsupported sasl.mechanism 'SCRAM-SHA-1'",
        ),
        (
            {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "w"},
            {},
            "needs sasl.password",
        ),
        (
            {"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"},
            {},
            "needs kafka.oauth_token_provider",
        ),
        ({"security.protocol": "SSL", "ssl.ca.location": "/nope.pem"}, {}, "/nope.pem: no such"),
        ({"sasl.password": "x"}, {"sasl.password": Path("/p")}, "both set 'sasl.password'"),
        ({}, {"sasl.password": Path("/no/such/file")}, "cannot read /no/such/file"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_connecting(
    librdkafka: dict[str, str], files: dict[str, Path], message: str
) -> None:
    with pytest.raises(SecurityConfigError, match=message.replace("(", r"\(")):
        KafkaSecurity.from_settings(KafkaSettings(librdkafka=librdkafka, secret_files=files))


def test_the_worker_gets_the_same_security_as_faust_credentials(
    ca: LocalCA, tmp_path: Path
) -> None:
    password = tmp_path / "password"
    password.write_text("pw")
    credentials = KafkaSecurity.from_settings(sasl(ca, password, "PLAIN")).faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("worker", "pw")
    assert credentials.mechanism.value == "PLAIN"
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.ssl_context is not None
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert credentials.ssl_context.check_hostname  # librdkafka's default: https

    assert KafkaSecurity.from_settings(KafkaSettings()).faust_credentials() is None


def test_mutual_tls_loads_the_client_certificate(ca: LocalCA) -> None:
    cert, key = ca.client_files("worker")
    settings = KafkaSettings(
        librdkafka={
            "security.protocol": "SSL",
            "ssl.ca.location": str(ca.ca_file),
            "ssl.certificate.location": str(cert),
            "ssl.key.location": str(key),
            "ssl.endpoint.identification.algorithm": "none",
        }
    )
    security = KafkaSecurity.from_settings(settings)
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SSLCredentials)
    assert not credentials.context.check_hostname
    assert security.principal == "the principal of certificate CN=worker"
    with pytest.raises(SecurityConfigError, match="needs both"):
        KafkaSecurity.from_settings(
            KafkaSettings(librdkafka={**settings.librdkafka, "ssl.key.location": ""})
        )


def test_one_token_provider_serves_both_clients() -> None:
    settings = KafkaSettings(
        librdkafka={"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER"},
        oauth_token_provider=f"{__name__}:fixed_token",
    )
    assert client_config(settings)["oauth_cb"]("") == ("header.payload.sig", TOKEN_EXPIRY)
    credentials = KafkaSecurity.from_settings(settings).faust_credentials()
    assert isinstance(credentials, faust.OAuthCredentials)
    assert asyncio.run(credentials.oauth_cb.token()) == "header.payload.sig"

    expired = settings.model_copy(update={"oauth_token_provider": f"{__name__}:expired_token"})
    provider = KafkaSecurity.from_settings(expired).faust_credentials().oauth_cb
    with pytest.raises(SecurityConfigError, match="expired token"):
        asyncio.run(provider.token())
    with pytest.raises(SecurityConfigError, match="cannot be loaded"):
        KafkaSecurity.from_settings(
            settings.model_copy(update={"oauth_token_provider": "no.such.module:f"})
        )
