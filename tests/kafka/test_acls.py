"""The least rights per role (streams/kafka/acls.py) and the README's copy of the worker's."""

from __future__ import annotations

from streams.config import REPO_ROOT, load_settings
from streams.kafka.acls import ROLES, role_acls


def rights(role: str) -> dict[tuple[str, str, bool], tuple[str, ...]]:
    return {
        (g.resource, g.name, g.prefixed): g.operations for g in role_acls(role, load_settings())
    }


def test_each_role_gets_only_what_it_uses() -> None:
    assert rights("publisher") == {("topic", "photos.uploaded", False): ("WRITE", "DESCRIBE")}
    reader = rights("reader")
    assert all("WRITE" not in ops and "CREATE" not in ops for ops in reader.values())
    assert reader[("group", "darkroom-reader-", True)] == ("READ",)
    worker = rights("worker")
    assert worker[("topic", "photos.uploaded", False)] == ("READ", "DESCRIBE")  # never WRITE
    assert worker[("group", "darkroom", False)] == ("READ",)
    assert not any(resource == "transactional-id" for resource, _, _ in worker)
    eos = rights("worker-exactly-once")
    assert eos[("transactional-id", "darkroom-", True)] == ("WRITE", "DESCRIBE")
    assert set(eos) - set(worker) == {("transactional-id", "darkroom-", True)}
    assert rights("consumer") == {
        ("topic", "photos.enriched", False): ("READ", "DESCRIBE"),
        ("group", "search-indexer", False): ("READ",),
    }
    into = role_acls("replay-into", load_settings(), into="photos.enriched")
    assert any(g.name == "photos.enriched" and "WRITE" in g.operations for g in into)
    assert all(role_acls(role, load_settings()) for role in ROLES)


def test_the_docs_list_the_workers_acls_as_the_code_grants_them() -> None:
    readme = (REPO_ROOT / "docs" / "security.md").read_text()
    for grant in role_acls("worker", load_settings()):
        line = grant.kafka_acls("User:worker").split(" --add ", 1)[1]
        assert f"kafka-acls ... --add {line}\n" in readme, line
