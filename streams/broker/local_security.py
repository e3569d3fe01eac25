"""The local Apache Kafka's secured modes: what the broker is told, and what each user's client
needs (``darkroom broker start --engine kafka --security sasl_ssl|ssl``).

``sasl_ssl``: one SASL_SSL listener offering SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN, TLS with
the local CA's broker certificate. ``ssl``: one SSL listener that requires a client certificate
(mutual TLS); the subject ``CN=<name>`` becomes the principal ``User:<name>``. In both, the
``StandardAuthorizer`` is on: a principal may do only what an ACL allows, except the super user
``admin`` (and ``broker``, the broker's own certificate, for inter-broker traffic on ``ssl``).

The controller listener stays PLAINTEXT on 127.0.0.1: SCRAM between KRaft controllers is not
supported (KAFKA-15513); its principal is ``ANONYMOUS``, which must therefore be a super user.

Secrets live in ``<state_dir>/security`` (0600): ``<user>.password`` for every user (random,
made once), the CA and the certificates (streams/broker/tls.py). Nothing here logs a password.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from confluent_kafka import KafkaException
from confluent_kafka.admin._scram import (
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from streams.broker.process import BrokerError
from streams.broker.tls import BROKER_CN, LocalCA
from streams.config import BrokerSecurity, Settings
from streams.kafka.clients import make_admin

ADMIN: Final = "admin"
SCRAM_MECHANISMS: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_MECHANISMS: Final = (*SCRAM_MECHANISMS, "PLAIN")
INTER_BROKER_MECHANISM: Final = "SCRAM-SHA-512"
AUTHORIZER: Final = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# CN=<name> -> User:<name> (the default would be the whole DN, "User:CN=worker")
PRINCIPAL_RULES: Final = "RULE:^CN=([^,]+)$/$1/,DEFAULT"


@dataclass(frozen=True)
class ClientSecurity:
    """What a client needs to connect as one user: librdkafka settings and the secrets it reads
    from files (``kafka.librdkafka`` and ``kafka.secret_files``)."""

    librdkafka: dict[str, str]
    secret_files: dict[str, Path]


class LocalSecurity:
    """The security folder of one local cluster and the properties its mode gives each node."""

    def __init__(self, state_dir: Path, mode: BrokerSecurity, users: list[str], host: str):
        self.folder = state_dir / "security"
        self.mode = mode
        self.users = [ADMIN, *(u for u in users if u != ADMIN)]
        self.host = host

    @property
    def listener(self) -> str:
        """The client listener's name and protocol."""
        return {"plaintext": "PLAINTEXT", "ssl": "SSL", "sasl_ssl": "SASL_SSL"}[self.mode]

    def password_file(self, user: str) -> Path:
        """Where ``user``'s password is kept (made on first use)."""
        path = self.folder / f"{user}.password"
        if not path.is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24))
        return path

    def password(self, user: str) -> str:
        """``user``'s password."""
        return self.password_file(user).read_text(encoding="utf-8").strip()

    def scram_arguments(self) -> list[str]:
        """`kafka-storage format` arguments that create the admin's SCRAM credentials (the
        broker needs them to talk to itself before any admin request can be made); the other
        users are created through the Admin API at each start (``KafkaCluster``)."""
        if self.mode != "sasl_ssl":
            return []
        password = self.password(ADMIN)
        return [
            arg
            for mechanism in SCRAM_MECHANISMS
            for arg in ("--add-scram", f"{mechanism}=[name={ADMIN},password={password}]")
        ]

    def properties(self) -> dict[str, str]:
        """The node properties that turn this mode on (none for plaintext)."""
        if self.mode == "plaintext":
            return {}
        ca = LocalCA.open(self.folder)
        props = {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(ca.broker_keystore(("localhost", self.host))),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(ca.ca_file),
            "authorizer.class.name": AUTHORIZER,
            "super.users": f"User:{ADMIN};User:{BROKER_CN};User:ANONYMOUS",
            # a missing right is a refusal, never an "allow" because no ACL names the resource
            "allow.everyone.if.no.acl.found": "false",
        }
        if self.mode == "ssl":
            props.update(
                {"ssl.client.auth": "required", "ssl.principal.mapping.rules": PRINCIPAL_RULES}
            )
            return props
        prefix = f"listener.name.{self.listener.lower()}"
        admin = f'username="{ADMIN}" password="{self.password(ADMIN)}"'
        plain_users = " ".join(f'user_{u}="{self.password(u)}"' for u in self.users)
        props.update(
            {
                "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
                "sasl.mechanism.inter.broker.protocol": INTER_BROKER_MECHANISM,
                f"{prefix}.scram-sha-512.sasl.jaas.config": (
                    f"org.apache.kafka.common.security.scram.ScramLoginModule required {admin};"
                ),
                f"{prefix}.scram-sha-256.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
                f"{prefix}.plain.sasl.jaas.config": (
                    "org.apache.kafka.common.security.plain.PlainLoginModule required "
                    f"{admin} {plain_users};"
                ),
            }
        )
        return props

    def create_users(self, admin: Settings) -> None:
        """SCRAM credentials for every user but the admin (sasl_ssl), made through the Admin
        API as ``admin`` at each start, so that a user added to the settings later exists after
        the next start (Kafka refuses two changes of one user in one request: one per mechanism)."""
        users = [u for u in self.users if u != ADMIN]
        if self.mode != "sasl_ssl" or not users:
            return
        client = make_admin(admin)
        for name in SCRAM_MECHANISMS:
            mechanism = getattr(ScramMechanism, name.replace("-", "_"))
            upserts: list[UserScramCredentialAlteration] = [
                UserScramCredentialUpsertion(
                    user, ScramCredentialInfo(mechanism, 8192), self.password(user).encode()
                )
                for user in users
            ]
            for user, future in client.alter_user_scram_credentials(upserts).items():
                try:
                    future.result(timeout=30)
                except KafkaException as exc:
                    raise BrokerError(f"could not create SCRAM user {user!r}: {exc}") from None

    def client(self, user: str = ADMIN, mechanism: str = "SCRAM-SHA-512") -> ClientSecurity:
        """The client settings that connect as ``user`` (with ``mechanism`` on sasl_ssl)."""
        if self.mode == "plaintext":
            return ClientSecurity({}, {})
        ca = LocalCA.open(self.folder)
        base = {"security.protocol": self.listener, "ssl.ca.location": str(ca.ca_file)}
        if self.mode == "ssl":
            cert, key = ca.client_files(user)
            return ClientSecurity(
                {**base, "ssl.certificate.location": str(cert), "ssl.key.location": str(key)}, {}
            )
        return ClientSecurity(
            {**base, "sasl.mechanism": mechanism, "sasl.username": user},
            {"sasl.password": self.password_file(user)},
        )
