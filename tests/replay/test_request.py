"""ReplayRequest: every option checked together, before the broker is asked (no broker here)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.config import TopicSettings
from streams.replay.request import Mode, ReplayRequest
from streams.replay.selection import Filters, ReplayUsageError
from streams.replay.targets import topic_types

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TYPES = topic_types(TopicSettings())


def request(**options: Any) -> ReplayRequest:
    options.setdefault("topic", "photos.uploaded")
    if "dry_run" not in options and not any(options.get(m) for m in ("into", "reprocess", "out")):
        options["dry_run"] = True
    return ReplayRequest.from_options(types=TYPES, now=NOW, **options)


def test_the_request_holds_the_parsed_options_and_is_frozen() -> None:
    made = request(
        partitions="0,2-3",
        from_time="-2h",
        to_offset=40,
        user="carol",
        limit=5,
        out="carol.jsonl",
        rate=50.0,
    )
    assert made.partitions == ((0, 0), (2, 3))
    assert made.start.time == NOW - timedelta(hours=2) and made.start.offset is None
    assert made.end.offset == 40
    assert made.filters == Filters(user="carol")
    assert (made.mode, made.out, made.limit, made.rate) == (Mode.OUT, "carol.jsonl", 5, 50.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.topic = "other"  # type: ignore[misc]
    assert request().mode is None and request().dry_run


def test_the_identity_and_default_checkpoint_are_what_they_always_were() -> None:
    """Checkpoints written before ReplayRequest existed still resume: same keys, same hash."""
    made = request(topic="photos.failed", reason="BLOB_MISSING", into="photos.uploaded")
    expected = {
        "topic": "photos.failed",
        "partitions": None,
        "from_offset": None,
        "from_time": None,
        "from_beginning": False,
        "to_offset": None,
        "to_time": None,
        "until_end": False,
        "user": None,
        "photo": None,
        "reason": "BLOB_MISSING",
        "limit": None,
        "into": "photos.uploaded",
        "reprocess": False,
        "out": None,
        "force": False,
        "stale_models": False,
        "rate": None,
    }
    assert made.identity == expected
    digest = hashlib.sha1(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:12]
    assert made.checkpoint_path == Path(".darkroom/replay") / f"photos.failed-{digest}.json"
    # what only says how to run, not what is replayed, does not change the identity
    again = request(
        topic="photos.failed",
        reason="BLOB_MISSING",
        into="photos.uploaded",
        resume=True,
        checkpoint=Path("cp.json"),
    )
    assert again.identity == expected and again.checkpoint_path == Path("cp.json")
    # relative times are kept as typed: a --resume tomorrow still matches
    assert request(from_time="-2h").identity["from_time"] == "-2h"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"into": "x", "reprocess": True}, "choose one of --into, --reprocess"),
        ({"into": "x", "out": "f.jsonl"}, "choose one of --into, --out"),
        ({"dry_run": False, "user": "u"}, "say what to do"),
        ({"reprocess": True, "topic": "photos.enriched"}, "--reprocess reads uploads"),
        ({"stale_models": True, "out": "-"}, "--stale-models goes with --reprocess"),
        ({"force": True, "out": "f.jsonl"}, "--force goes with --reprocess or --into"),
        ({"resume": True, "dry_run": True}, "--resume needs a replay that writes"),
        ({"resume": True, "out": "-"}, "--resume needs a replay that writes"),
        ({"into": ""}, "--into needs a topic"),
        ({"out": ""}, "--out needs a file name"),
        ({"from_offset": 1, "from_time": "-1h"}, "choose one of --from-offset, --from-time"),
        ({"to_time": "-1h", "until_end": True}, "choose one of --to-time, --until-end"),
        ({"from_offset": -1}, "--from-offset must be >= 0"),
        ({"from_time": "yesterday"}, "--from-time: 'yesterday' is not a time"),
        ({"from_time": "-999999999d"}, "--from-time '-999999999d' is out of range"),
        ({"partitions": "2-x"}, "--partitions: '2-x' is not a number"),
        (
            {"from_offset": 10, "to_offset": 5},
            "the end (--to-offset 5) is before the start (--from-offset 10): nothing to replay",
        ),
        (
            {"from_time": "-1h", "to_time": "-2h"},
            "the end (--to-time -2h = 2026-11-22T10:00:00Z) is before the start "
            "(--from-time -1h = 2026-11-22T11:00:00Z)",
        ),
        (
            {"from_time": "2026-11-20T09:00+01:00", "to_time": "2026-11-20T07:59:59Z"},
            "is before the start (--from-time 2026-11-20T09:00+01:00 = 2026-11-20T08:00:00Z)",
        ),
    ],
)
def test_bad_combinations_are_usage_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ReplayUsageError) as caught:
        request(**options)
    assert message in str(caught.value)


def test_an_empty_range_is_valid() -> None:
    assert request(from_offset=3, to_offset=3).start.offset == 3
    both = request(from_time="-1h", to_time="-1h")  # one `now` for both ends
    assert both.start.time == both.end.time == NOW - timedelta(hours=1)
    # an offset against a time is only known per partition: the OffsetResolver checks it
    assert request(from_offset=10, to_time="-1h").end.time is not None


def test_paths_that_cannot_be_files(tmp_path: Path) -> None:
    with pytest.raises(ReplayUsageError, match=r"--out .* is a directory"):
        request(out=str(tmp_path))
    with pytest.raises(ReplayUsageError, match=r"--checkpoint .* is a directory"):
        request(out="-", checkpoint=tmp_path)
    with pytest.raises(ReplayUsageError, match="--checkpoint /dev/full is not a regular file"):
        request(out="x.jsonl", checkpoint=Path("/dev/full"))  # it would be renamed over
    same = tmp_path / "x.json"
    with pytest.raises(ReplayUsageError, match="--out and --checkpoint name the same file"):
        request(out=str(same), checkpoint=tmp_path / "." / "x.json")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"into": "photos.enriched"},
            "photos.enriched carries PhotoEnriched or PhotoRemoved events; a copy of "
            "photos.uploaded writes PhotoUploaded or PhotoDeleted or UserErased events",
        ),
        ({"topic": "photos.failed", "into": "photos.shadow"}, "carries ShadowResult events"),
        ({"topic": "photos.enriched", "into": "photos.failed"}, "carries PhotoFailed events"),
        ({"into": "elsewhere"}, "not one of Darkroom's topics .* add --foreign"),
        ({"into": "photos.uploaded", "foreign": True}, "--foreign is for topics that are not"),
        ({"out": "x.jsonl", "foreign": True}, "--foreign goes with --into"),
        ({"partitions": ""}, "--partitions is empty"),
        ({"partitions": "  "}, "--partitions is empty"),
    ],
)
def test_a_replay_never_writes_a_type_a_topic_does_not_carry(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ReplayUsageError, match=message):
        request(**options)


def test_what_each_copy_must_write() -> None:
    assert request(topic="photos.failed", into="photos.uploaded").into_type == "PhotoUploaded"
    assert request(into="photos.uploaded").into_type == "PhotoUploaded"  # a backfill
    assert request(into="elsewhere", foreign=True).into_type is None  # deliberate, unchecked
    assert request(topic="elsewhere", into="photos.enriched").into_type == "PhotoEnriched"


def test_partitions_of_checks_the_topics_and_partitions() -> None:
    topics = {"photos.uploaded": 4, "photos.failed": 2}
    assert request().partitions_of(topics) == [0, 1, 2, 3]
    assert request(partitions="1-2").partitions_of(topics) == [1, 2]
    with pytest.raises(ReplayUsageError, match="--topic 'nope' does not exist"):
        request(topic="nope").partitions_of(topics)
    with pytest.raises(ReplayUsageError, match="--into 'nope' does not exist"):
        request(into="nope", foreign=True).partitions_of(topics)
    with pytest.raises(ReplayUsageError, match="partitions 4-100000000 do not exist"):
        request(partitions="0-100000000").partitions_of(topics)
