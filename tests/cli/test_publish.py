"""`darkroom publish` then `darkroom tail` on the real embedded broker."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from streams.blobs import BlobStore
from streams.broker import free_port
from streams.cli import publish as cli_publish
from streams.config import Settings, settings_env
from streams.publish import PathProblem, PhotoFile, collect
from tests.blobs.s3server import LocalS3
from tests.cli.runner import darkroom, json_lines
from tests.conftest import s3_settings
from tests.photos import write_photos

pytestmark = pytest.mark.broker


def _tail_json(topic: str, env: dict[str, str], expect: int, timeout: float = 5.0) -> list[dict]:
    result = darkroom(
        "tail",
        topic,
        "--from-beginning",
        "--json",
        "--max",
        str(expect + 1),
        "--timeout",
        str(timeout),
        env=env,
    )
    assert result.exit_code == 0, result.output
    return json_lines(result.stdout)


def test_publish_folder_then_tail_shows_every_photo_once(
    tmp_path: Path, kafka_env: dict[str, str]
) -> None:
    paths = write_photos(tmp_path / "photos", {"ann": 5, "ben": 4, "cy": 3})
    result = darkroom("publish", str(tmp_path / "photos"), env=kafka_env)
    assert result.exit_code == 0, result.output
    assert "published 12 photo(s)" in result.stdout

    events = _tail_json(kafka_env["DARKROOM_TOPICS_UPLOADED"], kafka_env, expect=12, timeout=2)
    assert len(events) == 12
    records = [e["event"] for e in events]
    assert len({r["photo_id"] for r in records}) == 12
    assert sorted(r["filename"] for r in records) == sorted(p.name for p in paths)
    assert all(e["type"] == "PhotoUploaded" and e["key"] == e["event"]["user_id"] for e in events)
    assert {r["user_id"] for r in records} == {"ann", "ben", "cy"}  # default: folder name
    for record in records:
        uri = record["blob"]["uri"]
        assert uri.startswith("file://") and Path(uri.removeprefix("file://")).is_file()

    by_user: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for e in events:
        by_user[e["key"]].append((e["partition"], e["offset"], e["event"]["filename"]))
    for user, rows in by_user.items():
        assert len({partition for partition, _, _ in rows}) == 1, f"{user} spans partitions"
        in_offset_order = [name for _, _, name in sorted(rows)]
        assert in_offset_order == sorted(in_offset_order), f"{user} out of order"


def test_user_option_and_inline(tmp_path: Path, kafka_env: dict[str, str]) -> None:
    write_photos(tmp_path, {"x": 2}, size=16)
    result = darkroom(
        "publish", str(tmp_path / "x" / "*.jpg"), "--user", "zoe", "--inline", env=kafka_env
    )
    assert result.exit_code == 0, result.output
    assert "2 inline" in result.stdout
    events = _tail_json(kafka_env["DARKROOM_TOPICS_UPLOADED"], kafka_env, expect=2, timeout=2)
    assert [e["key"] for e in events] == ["zoe", "zoe"]
    assert all("data" in e["event"]["blob"] for e in events)


def test_same_photo_same_user_keeps_its_photo_id(tmp_path: Path, kafka_env: dict[str, str]) -> None:
    (path,) = write_photos(tmp_path, {"u": 1})
    for _ in range(2):
        assert darkroom("publish", str(path), env=kafka_env).exit_code == 0
    events = _tail_json(kafka_env["DARKROOM_TOPICS_UPLOADED"], kafka_env, expect=2, timeout=2)
    assert len({e["event"]["photo_id"] for e in events}) == 1
    assert len({e["event"]["event_id"] for e in events}) == 2


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (lambda d: d / "missing.jpg", "no such file or directory"),
        (
            lambda d: _write(d / "notes.jpg", b"just some text, not a photo"),
            "not a recognised image",
        ),
        (lambda d: _write(d / "empty.png", b""), "is empty"),
    ],
)
def test_bad_path_sends_nothing(
    tmp_path: Path, kafka_env: dict[str, str], make_bad, message
) -> None:
    good = write_photos(tmp_path, {"u": 2})
    bad = make_bad(tmp_path)
    result = darkroom("publish", *map(str, good), str(bad), env=kafka_env)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "nothing was sent" in result.stderr
    assert _tail_json(kafka_env["DARKROOM_TOPICS_UPLOADED"], kafka_env, expect=0, timeout=1) == []


def test_skip_invalid_sends_the_rest(tmp_path: Path, kafka_env: dict[str, str]) -> None:
    good = write_photos(tmp_path, {"u": 2})
    bad = _write(tmp_path / "notes.txt", b"hello")
    result = darkroom("publish", "--skip-invalid", *map(str, good), str(bad), env=kafka_env)
    assert result.exit_code == 0, result.output
    assert "published 2 photo(s)" in result.stdout
    assert "notes.txt" in result.stderr


def test_broker_down_is_exit_3_with_a_hint(tmp_path: Path, kafka_env: dict[str, str]) -> None:
    good = write_photos(tmp_path, {"u": 1})
    env = {**kafka_env, "DARKROOM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    result = darkroom("publish", str(good[0]), env=env)
    assert result.exit_code == 3
    assert "did not answer" in result.stderr and "darkroom broker start" in result.stderr


def test_missing_topic_is_a_clear_error(tmp_path: Path, kafka_env: dict[str, str]) -> None:
    good = write_photos(tmp_path, {"u": 1})
    env = {**kafka_env, "DARKROOM_TOPICS_UPLOADED": "no.such.topic"}
    result = darkroom("publish", str(good[0]), env=env)
    assert result.exit_code == 2
    assert "'no.such.topic' does not exist" in result.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("user", ["..", "../../outside", "u" * 300])
def test_any_user_id_stays_inside_the_blob_root(
    tmp_path: Path, kafka: Settings, kafka_env: dict[str, str], user: str
) -> None:
    (path,) = write_photos(tmp_path / "photos", {"u": 1})
    result = darkroom("publish", str(path), "--user", user, env=kafka_env)
    assert result.exit_code == 0, result.output
    (event,) = _tail_json(kafka_env["DARKROOM_TOPICS_UPLOADED"], kafka_env, expect=1, timeout=2)
    assert event["key"] == event["event"]["user_id"] == user  # the id itself is kept whole
    blobs = BlobStore(kafka.blobs.root, kafka.blobs.max_bytes)
    uri = event["event"]["blob"]["uri"]
    assert Path(unquote(urlsplit(uri).path)).parent.parent == blobs.root
    assert blobs.get(uri, event["event"]["content_sha256"]) == path.read_bytes()  # worker's view
    assert not (tmp_path / "outside").exists()


@pytest.mark.parametrize(("user", "message"), [("", "must not be empty"), ("\udcff", "UTF-8")])
def test_an_unusable_user_id_is_a_usage_error(
    tmp_path: Path, kafka_env: dict[str, str], user: str, message: str
) -> None:
    (path,) = write_photos(tmp_path, {"u": 1})
    result = darkroom("publish", str(path), "--user", user, env=kafka_env)
    assert result.exit_code == 2
    assert "--user" in result.stderr and message in result.stderr


def test_a_file_deleted_while_publishing_is_listed_and_the_rest_summarised(
    tmp_path: Path, kafka_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_photos(tmp_path / "photos", {"u": 3})

    def collect_then_delete(arguments: list[str]) -> tuple[list[PhotoFile], list[PathProblem]]:
        checked = collect(arguments)
        paths[1].unlink()  # gone after it was checked, before it was read
        return checked

    monkeypatch.setattr(cli_publish, "collect", collect_then_delete)
    result = darkroom("publish", str(tmp_path / "photos"), env=kafka_env)
    assert result.exit_code == 1, result.output
    assert f"not delivered {paths[1]}: the file does not exist" in result.stderr
    assert "published 2 photo(s)" in result.stdout and "1 not delivered" in result.stdout


def test_an_empty_folder_says_it_has_no_photos(tmp_path: Path, kafka_env: dict[str, str]) -> None:
    (tmp_path / "empty").mkdir()
    result = darkroom("publish", str(tmp_path / "empty"), env=kafka_env)
    assert result.exit_code == 2
    assert "no photos in this folder" in result.stderr
    assert "no such file" not in result.stderr and "--skip-invalid" not in result.stderr


@pytest.fixture
def kafka_s3(kafka: Settings, s3: Settings) -> Settings:
    """This test's topics and its own bucket on the local S3 server."""
    return s3_settings(kafka, s3.blobs.s3_endpoint or "", s3.blobs.s3_buckets)


def test_publish_to_s3_stores_every_photo_before_its_event(
    tmp_path: Path, kafka_s3: Settings, local_s3: LocalS3
) -> None:
    env = settings_env(kafka_s3)
    paths = write_photos(tmp_path / "photos", {"ann": 2, "bob": 1})
    bucket = kafka_s3.blobs.s3_buckets[0]
    result = darkroom("publish", str(tmp_path / "photos"), "--to", f"s3://{bucket}/in", env=env)
    assert result.exit_code == 0, result.output
    events = _tail_json(kafka_s3.topics.uploaded, env, expect=3)
    assert len(events) == 3
    blobs = BlobStore.from_settings(kafka_s3)
    by_name = {(path.parent.name, path.name): path.read_bytes() for path in paths}
    for event in events:
        uri = event["event"]["blob"]["uri"]
        assert uri.startswith(f"s3://{bucket}/in/{event['key']}/")
        assert (
            blobs.get(uri, event["event"]["content_sha256"])
            == by_name[(event["key"], event["event"]["filename"])]
        )
    assert not kafka_s3.blobs.root.exists()  # nothing went to the local blob root
    keys = local_s3.client().list_objects_v2(Bucket=bucket)["KeyCount"]
    assert keys == 3


def test_publish_sends_no_event_for_a_photo_it_could_not_upload(
    tmp_path: Path, kafka_s3: Settings
) -> None:
    # a bucket the workers serve but the store does not have: every upload is refused
    settings = s3_settings(kafka_s3, kafka_s3.blobs.s3_endpoint or "", ["not-created-here"])
    env = settings_env(settings)
    write_photos(tmp_path / "photos", {"ann": 2})
    result = darkroom("publish", str(tmp_path / "photos"), "--to", "s3://not-created-here", env=env)
    assert result.exit_code == 1
    assert result.stderr.count("cannot upload s3://not-created-here/ann/") == 2
    assert _tail_json(settings.topics.uploaded, env, expect=0, timeout=2) == []


def test_publish_to_a_bucket_not_served_sends_nothing(tmp_path: Path, kafka_s3: Settings) -> None:
    env = settings_env(kafka_s3)
    write_photos(tmp_path / "photos", {"ann": 1})
    result = darkroom("publish", str(tmp_path / "photos"), "--to", "s3://elsewhere/x", env=env)
    assert result.exit_code == 2
    assert "bucket 'elsewhere' is not served" in result.stderr
    assert _tail_json(kafka_s3.topics.uploaded, env, expect=0, timeout=2) == []
