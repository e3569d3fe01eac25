"""The shared batch pipeline without a broker: messages in, encoded outputs out.

Every message of a batch ends as exactly one output (or skipped), whatever it holds; a dead
letter always fits the producer's limit and keeps what identifies its original.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import cv2
import pytest

from streams.blobs import BlobStore
from streams.config import load_settings
from streams.contracts import EventType, SchemaRepository, SingleObjectCodec
from streams.contracts.events import new_upload
from streams.engine import Enricher
from streams.errors import FailureReason
from streams.pipeline import DuplicatePolicy, DuplicateSearch, OutputBuilder, Photo, Pipeline
from streams.pipeline.bestshot import FACE_IN_FOCUS, BestShots
from streams.pipeline.memory import MemoryStore
from streams.pipeline.outputs import RECORD_OVERHEAD_BYTES, RawMessage
from streams.samples import encode_jpeg, load_photo

SETTINGS = load_settings()
SCHEMAS = SchemaRepository(SETTINGS.paths.schemas)
CODEC = SingleObjectCodec(SCHEMAS)
LIMIT = 200_000  # bytes: small, so the tests stay quick; the rule is the same at 1 MB


def make_pipeline(enricher: Enricher, root: Path, **kwargs: Any) -> Pipeline:
    options: dict[str, Any] = {"max_message_bytes": LIMIT, **kwargs}
    return Pipeline(
        codec=CODEC,
        blobs=BlobStore(root, SETTINGS.blobs.max_bytes),
        enricher=enricher,
        outputs=OutputBuilder(SCHEMAS),
        **options,
    )


def upload_bytes(
    photo: str = "chelsea",
    user: str = "u1",
    photo_id: str = "p1",
    data: bytes | None = None,
    **kw: Any,
) -> bytes:
    data = encode_jpeg(load_photo(photo)) if data is None else data
    fields: dict[str, Any] = {"byte_size": len(data), **kw}
    record = new_upload(
        photo_id=photo_id, user_id=user, content_type="image/jpeg", blob=data, **fields
    )
    return CODEC.encode(EventType.PHOTO_UPLOADED, record)


def decoded(photo: Photo) -> dict[str, Any]:
    assert photo.value is not None
    return CODEC.decode(photo.value).record


def test_an_upload_comes_out_enriched(enricher: Enricher, tmp_path: Path) -> None:
    photo = make_pipeline(enricher, tmp_path).test(upload_bytes(), key=b"u1")
    assert photo.topic == "enriched"
    record = decoded(photo)
    assert record["photo_id"] == "p1" and record["labels"]


def test_bytes_that_are_no_event_become_a_dead_letter_with_their_bytes(
    enricher: Enricher, tmp_path: Path
) -> None:
    photo = make_pipeline(enricher, tmp_path).test(b"\x00not avro at all", key=b"k")
    assert photo.topic == "failed"
    record = decoded(photo)
    assert (record["reason"], record["stage"]) == (FailureReason.MALFORMED_EVENT, "decode_event")
    assert record["original_value"] == b"\x00not avro at all"
    assert record["original_key"] == b"k"
    assert record["original_truncated"] is False
    assert record["original_size"] == 16


@pytest.mark.parametrize("factor", [0.9, 1.0, 2.0, 15.0])
def test_a_dead_letter_fits_the_limit_and_identifies_its_original(
    enricher: Enricher, tmp_path: Path, factor: float
) -> None:
    original = bytes(range(256)) * int(LIMIT * factor / 256)
    key = b"user-with-a-key"
    photo = make_pipeline(enricher, tmp_path).test(original, key=key)
    assert photo.value is not None
    assert len(photo.value) + len(key) + RECORD_OVERHEAD_BYTES <= LIMIT
    record = decoded(photo)
    assert record["original_size"] == len(original)
    assert record["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert record["source"] == {"topic": "test", "partition": 0, "offset": 0}
    kept = record["original_value"]
    assert original.startswith(kept)
    assert record["original_truncated"] is (len(kept) < len(original))
    if factor < 1:
        assert kept == original  # it fits whole: nothing cut
    else:  # as much as fits is kept, not just anything under the limit
        assert len(photo.value) > LIMIT - RECORD_OVERHEAD_BYTES - len(key) - 16


def test_a_dead_letter_whose_ids_alone_are_too_large_still_fits(
    enricher: Enricher, tmp_path: Path
) -> None:
    huge = "u" * LIMIT  # a hostile upload: its user id alone is over the limit
    record = new_upload(
        photo_id="p", user_id=huge, content_type="image/jpeg", byte_size=1, blob="s3://b/k"
    )
    value = CODEC.encode(EventType.PHOTO_UPLOADED, record)
    photo = make_pipeline(enricher, tmp_path, max_message_bytes=LIMIT // 2).test(value)
    assert photo.topic == "failed" and photo.value is not None
    assert len(photo.value) <= LIMIT // 2 - RECORD_OVERHEAD_BYTES
    letter = decoded(photo)
    assert letter["reason"] == FailureReason.BLOB_MISSING
    assert letter["user_id"] is None and letter["original_value"] == b""
    assert letter["original_size"] == len(value) and letter["original_truncated"] is True
    assert letter["original_sha256"] == hashlib.sha256(value).hexdigest()


def test_an_oversized_message_costs_nobody_else_in_its_batch(
    enricher: Enricher, tmp_path: Path
) -> None:
    messages = [
        RawMessage("t", 0, 0, b"u1", upload_bytes(photo_id="a")),
        RawMessage("t", 0, 1, b"x", b"\xff" * (2 * LIMIT)),
        RawMessage("t", 0, 2, b"u1", upload_bytes(photo="coffee", photo_id="b")),
    ]
    batch = make_pipeline(enricher, tmp_path).run(messages)
    assert [p.topic for p in batch.photos] == ["enriched", "failed", "enriched"]


def test_an_enriched_event_over_the_limit_becomes_output_too_large(
    enricher: Enricher, tmp_path: Path
) -> None:
    # an enriched cat (labels, embedding, quality...) is about 10 KB: 3 KB cannot hold it
    photo = make_pipeline(enricher, tmp_path, max_message_bytes=4096).test(upload_bytes())
    assert photo.topic == "failed"
    assert photo.value is not None and len(photo.value) <= 4096 - RECORD_OVERHEAD_BYTES
    record = decoded(photo)
    assert (record["reason"], record["stage"]) == (FailureReason.OUTPUT_TOO_LARGE, "encode_output")
    assert record["original_truncated"] is True  # the inline photo did not fit either


def test_an_encoding_bug_becomes_internal_error(enricher: Enricher, tmp_path: Path) -> None:
    class Broken(OutputBuilder):
        def enriched(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return {**super().enriched(*args, **kwargs), "width": "wide"}  # not an int

    pipeline = make_pipeline(enricher, tmp_path)
    pipeline.outputs = Broken(SCHEMAS)
    record = decoded(pipeline.test(upload_bytes()))
    assert (record["reason"], record["stage"]) == (FailureReason.INTERNAL_ERROR, "encode_output")
    assert record["original_decoded"] is True


def test_an_unforeseen_fetch_error_stays_with_its_photo(enricher: Enricher, tmp_path: Path) -> None:
    class Flaky(BlobStore):
        def fetch(self, blob: dict[str, Any], expected_sha256: str | None) -> bytes:
            if blob.get("uri", "").endswith("bad.jpg"):
                raise OSError(5, "Input/output error")
            return super().fetch(blob, expected_sha256)

    pipeline = make_pipeline(enricher, tmp_path)
    pipeline.blobs = Flaky(tmp_path, SETTINGS.blobs.max_bytes)
    bad = new_upload(
        photo_id="bad",
        user_id="u",
        content_type="image/jpeg",
        byte_size=1,
        blob=(tmp_path / "bad.jpg").as_uri(),
    )
    batch = pipeline.run(
        [
            RawMessage("t", 0, 0, b"u", CODEC.encode(EventType.PHOTO_UPLOADED, bad)),
            RawMessage("t", 0, 1, b"u1", upload_bytes()),
        ]
    )
    first, second = batch.photos
    assert first.failed is not None and first.failed.stage == "fetch_blob"
    assert first.failed.reason == FailureReason.INTERNAL_ERROR
    assert "Input/output error" in decoded(first)["detail"]
    assert second.topic == "enriched"


def test_a_skipped_upload_has_no_output(enricher: Enricher, tmp_path: Path) -> None:
    pipeline = make_pipeline(enricher, tmp_path, skip=lambda photo: True)
    photo = pipeline.test(upload_bytes())
    assert photo.skipped and photo.topic is None and photo.value is None


def test_the_fetched_size_counts_not_the_claimed_one(enricher: Enricher, tmp_path: Path) -> None:
    photo = make_pipeline(enricher, tmp_path).test(upload_bytes(byte_size=10**12))
    assert photo.topic == "enriched"
    assert photo.fetched_bytes == len(encode_jpeg(load_photo("chelsea")))


def test_a_copy_later_in_the_same_batch_is_its_duplicate(
    enricher: Enricher, tmp_path: Path
) -> None:
    search = DuplicateSearch(MemoryStore(), DuplicatePolicy(10, 0.75, 100))
    pipeline = make_pipeline(enricher, tmp_path, duplicates=search)
    batch = pipeline.run(
        [
            RawMessage("t", 0, 0, b"u1", upload_bytes(photo_id="first")),
            RawMessage("t", 0, 1, b"u1", upload_bytes(photo_id="copy")),
            RawMessage("t", 0, 2, b"u2", upload_bytes(user="u2", photo_id="other-user")),
        ]
    )
    first, copy, other = (decoded(p) for p in batch.photos)
    assert first["duplicate_of"] is None
    assert copy["duplicate_of"]["photo_id"] == "first"
    assert other["duplicate_of"] is None  # another user's photos are not searched
    assert [entry[0] for entry in batch.findings.indexes["u1"]] == ["first", "copy"]
    assert set(batch.findings.embeddings) == {"u1/first", "u1/copy", "u2/other-user"}


def test_each_copy_says_its_group_and_whether_it_is_the_best_so_far(
    enricher: Enricher, tmp_path: Path
) -> None:
    store = MemoryStore()
    pipeline = make_pipeline(
        enricher,
        tmp_path,
        duplicates=DuplicateSearch(store, DuplicatePolicy(20, 0.75, 100)),
        best_shots=BestShots(store),
    )
    blurred = encode_jpeg(cv2.GaussianBlur(load_photo("astronaut"), (0, 0), 2.5))
    batch = pipeline.run(
        [
            RawMessage("t", 0, 0, b"u1", upload_bytes(photo_id="soft", data=blurred)),
            RawMessage("t", 0, 1, b"u1", upload_bytes("astronaut", photo_id="sharp")),
        ]
    )
    soft, sharp = (decoded(p) for p in batch.photos)
    assert soft["best_shot"] == {
        "group_id": "soft",
        "best": True,  # alone so far
        "best_photo_id": "soft",
        "score": pytest.approx(soft["best_shot"]["score"]),
        "group_size": 1,
    }
    assert sharp["duplicate_of"]["photo_id"] == "soft"
    assert sharp["best_shot"]["group_id"] == "soft" and sharp["best_shot"]["best"] is True
    assert sharp["best_shot"]["group_size"] == 2
    assert sharp["best_shot"]["score"] > soft["best_shot"]["score"] + 0.1
    assert sharp["faces"][0]["sharpness"] >= FACE_IN_FOCUS > soft["faces"][0]["sharpness"]
    assert sharp["produced_by"]["best_shot"]["name"] == "darkroom-bestshot"
    assert list(batch.shots.groups) == ["u1/soft"]
