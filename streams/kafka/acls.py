"""The least rights each Darkroom role needs on a cluster with ACLs, in one place.

``role_acls`` is the source of truth: `darkroom acls ROLE` prints it as ``kafka-acls`` lines
(and applies it with ``--apply``), docs/security.md lists the same lines
(tests/kafka/test_acls.py keeps them equal), and tests/kafka/test_secured.py gives each role
exactly its list and runs it.

Names Darkroom generates are granted by prefix: the worker's changelogs and Faust's own topics
(``<app_id>-...``), the transactional ids of exactly_once (``<app_id>-...``), and the throwaway
groups of readers that never commit (``darkroom-reader-...``: librdkafka needs a group id to
fetch, and a reader with ``assign`` never joins it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import KafkaException
from confluent_kafka.admin._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
)
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

from streams.config import Settings
from streams.errors import OperationError, UsageError

READER_GROUP_PREFIX: Final = "darkroom-reader-"
ROLES: Final = (
    "worker",
    "worker-exactly-once",
    "publisher",
    "reader",
    "replay-export",
    "replay-into",
    "replay-reprocess",
    "consumer",
)


@dataclass(frozen=True)
class Grant:
    """Operations on one resource (a topic, group or transactional id, exact or by prefix)."""

    resource: str  # "topic", "group", "transactional-id"
    name: str
    operations: tuple[str, ...]  # READ, WRITE, DESCRIBE, CREATE
    prefixed: bool = False

    def kafka_acls(self, principal: str) -> str:
        """The `kafka-acls` command line that grants it."""
        ops = " ".join(f"--operation {op.title()}" for op in self.operations)
        pattern = " --resource-pattern-type prefixed" if self.prefixed else ""
        return (
            f"kafka-acls --bootstrap-server $BOOTSTRAP --command-config admin.properties --add "
            f"--allow-principal {principal} {ops} --{self.resource} {self.name}{pattern}"
        )

    def bindings(self, principal: str) -> list[AclBinding]:
        """The same grant as Admin API bindings."""
        kinds = {
            "topic": ResourceType.TOPIC,
            "group": ResourceType.GROUP,
            "transactional-id": ResourceType.TRANSACTIONAL_ID,
        }
        pattern = ResourcePatternType.PREFIXED if self.prefixed else ResourcePatternType.LITERAL
        return [
            AclBinding(
                kinds[self.resource],
                self.name,
                pattern,
                principal,
                "*",
                getattr(AclOperation, op),
                AclPermissionType.ALLOW,
            )
            for op in self.operations
        ]


class UnknownRoleError(UsageError):
    """A role name that is not one of ROLES."""


def role_acls(
    role: str, settings: Settings, *, into: str | None = None, group: str | None = None
) -> list[Grant]:
    """What ``role`` needs with these settings' topic names and app id. ``into``: the target
    topic of replay-into (default: the uploads topic, the re-drive case); ``group``: the
    consumer group of a downstream consumer (default: ``search-indexer``)."""
    t, app_id = settings.topics, settings.worker.app_id
    outputs = (t.enriched, t.failed, t.shadow)
    reader_group = Grant("group", READER_GROUP_PREFIX, ("READ",), prefixed=True)

    def read(*topics: str) -> list[Grant]:
        return [Grant("topic", name, ("READ", "DESCRIBE")) for name in topics]

    def write(*topics: str) -> list[Grant]:
        return [Grant("topic", name, ("WRITE", "DESCRIBE")) for name in topics]

    worker = [
        *read(t.uploaded),
        *write(*outputs),
        Grant("group", app_id, ("READ",)),
        # changelogs, Faust's leader topic; CREATE only where they are not pre-created
        # (`darkroom topics plan`)
        Grant("topic", f"{app_id}-", ("READ", "WRITE", "DESCRIBE", "CREATE"), prefixed=True),
        reader_group,  # the worker's own readers: continuity checks, local state checks
    ]
    grants: dict[str, list[Grant]] = {
        "worker": worker,
        "worker-exactly-once": [
            *worker,
            Grant("transactional-id", f"{app_id}-", ("WRITE", "DESCRIBE"), prefixed=True),
        ],
        "publisher": write(t.uploaded),
        "reader": [*read(t.uploaded, *outputs), reader_group],
        "replay-export": [*read(t.uploaded, t.failed), reader_group],
        # the sink reads its target too: a resumed replay asks what it already wrote there;
        # and photos.enriched first: what was forgotten is never copied back
        "replay-into": [
            *read(t.uploaded, t.failed, t.enriched),
            *[Grant("topic", into or t.uploaded, ("READ", "WRITE", "DESCRIBE"))],
            reader_group,
        ],
        "replay-reprocess": [
            *read(t.uploaded, *outputs),
            *[Grant("topic", name, ("WRITE",)) for name in outputs],
            reader_group,
        ],
        "consumer": [*read(t.enriched), Grant("group", group or "search-indexer", ("READ",))],
    }
    if role not in grants:
        raise UnknownRoleError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return _merged(grants[role])


def _merged(grants: list[Grant]) -> list[Grant]:
    """One grant per resource, operations in a stable order."""
    order = ("READ", "WRITE", "DESCRIBE", "CREATE")
    merged: dict[tuple[str, str, bool], set[str]] = {}
    for grant in grants:
        merged.setdefault((grant.resource, grant.name, grant.prefixed), set()).update(
            grant.operations
        )
    return [
        Grant(resource, name, tuple(op for op in order if op in ops), prefixed)
        for (resource, name, prefixed), ops in merged.items()
    ]


def apply_grants(admin: Any, grants: list[Grant], principal: str, timeout_s: float = 30.0) -> int:
    """Create ``grants`` for ``principal`` through ``admin`` (an AdminClient of a principal with
    ALTER on the cluster) and wait until the broker's authorizer shows them: a client that
    started right after the creation was still refused on a fresh cluster. Returns the count."""
    bindings = [b for grant in grants for b in grant.bindings(principal)]
    for binding, future in admin.create_acls(bindings).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            raise AclError(f"could not create {binding}: {exc.args[0].str()}") from None
    wanted = {str(b) for b in bindings}
    deadline = time.monotonic() + timeout_s
    query = AclBindingFilter(  # None: any name, any host (the stubs say str)
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        principal,
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    while True:
        shown = {str(b) for b in admin.describe_acls(query).result(timeout=timeout_s)}
        if wanted <= shown:
            return len(bindings)
        if time.monotonic() > deadline:
            raise AclError(
                f"{len(wanted - shown)} ACLs not shown by the broker after {timeout_s:g} s"
            )
        time.sleep(0.1)


class AclError(OperationError):
    """ACLs that could not be created, or did not take effect."""
