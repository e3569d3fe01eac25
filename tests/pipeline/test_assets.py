"""Thumbnails through the batch pipeline: stored beside the photo, named in its event, made again
in place, never at the cost of the photo's other fields, and forgotten with the photo."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from streams.blobs import BlobStore, sha256_hex
from streams.blobs.assets import AssetStore
from streams.config import Settings
from streams.contracts import EventType
from streams.contracts.events import new_photo_deleted, new_upload, new_user_erased
from streams.engine import Enricher
from streams.imaging.thumbnails import THUMBNAILER
from streams.pipeline import Pipeline
from streams.pipeline.outputs import RawMessage
from streams.samples import encode_jpeg, load_photo
from tests.pipeline.test_batch import CODEC, SETTINGS, decoded, make_pipeline, upload_bytes

# the defaults: the grid size in WebP and JPEG, the preview in JPEG alone
NAMES = {"960.jpg", "256.webp", "256.jpg"}


def with_assets(enricher: Enricher, root: Path, blobs: BlobStore | None = None) -> Pipeline:
    blobs = blobs or BlobStore(root, SETTINGS.blobs.max_bytes)
    assets = AssetStore(blobs, ".assets", attempts=2, sleep=lambda _s: None)
    pipeline = make_pipeline(enricher, root, assets=assets)
    pipeline.blobs = blobs
    return pipeline


def path_of(uri: str) -> Path:
    return Path(unquote(urlsplit(uri).path))


def request(record: dict[str, Any], event_type: EventType, offset: int) -> RawMessage:
    user = str(record["user_id"]).encode()
    return RawMessage("t", 0, offset, user, CODEC.encode(event_type, record))


def test_an_enriched_photo_names_its_stored_thumbnails(enricher: Enricher, tmp_path: Path) -> None:
    record = decoded(with_assets(enricher, tmp_path).test(upload_bytes(), key=b"u1"))
    assets = record["assets"]
    assert {item["name"] for item in assets["items"]} == NAMES and assets["error"] is None
    for item in assets["items"]:
        data = path_of(item["uri"]).read_bytes()
        assert (item["bytes"], item["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert path_of(item["uri"]).parent == tmp_path / ".assets" / "u1" / "p1"
        # chelsea is 451x300: no thumbnail is larger than the photo
        assert (item["width"], item["height"]) == (
            (451, 300) if item["size"] == 960 else (256, 170)
        )
    assert record["produced_by"]["assets"] == THUMBNAILER
    assert record["labels"]


def test_enriching_again_overwrites_the_same_objects(enricher: Enricher, tmp_path: Path) -> None:
    pipeline = with_assets(enricher, tmp_path)
    first = decoded(pipeline.test(upload_bytes(), key=b"u1"))["assets"]["items"]
    again = decoded(pipeline.test(upload_bytes(), key=b"u1"))["assets"]["items"]
    assert [i["uri"] for i in first] == [i["uri"] for i in again]
    assert {p.name for p in (tmp_path / ".assets" / "u1" / "p1").iterdir()} == NAMES


def test_a_store_that_refuses_costs_the_photo_its_thumbnails_alone(
    enricher: Enricher, tmp_path: Path
) -> None:
    (tmp_path / ".assets").write_bytes(b"a file where the assets folder goes")
    photo = with_assets(enricher, tmp_path).test(upload_bytes(), key=b"u1")
    assert photo.topic == "enriched"
    record = decoded(photo)
    assert record["assets"]["items"] == []
    assert "not stored in 2 tries" in record["assets"]["error"]
    assert record["labels"] and "assets" not in record["produced_by"]


def test_a_deleted_photo_loses_its_assets_and_an_erased_user_all_of_theirs(
    enricher: Enricher, tmp_path: Path
) -> None:
    pipeline = with_assets(enricher, tmp_path)
    for user, photo in (("u1", "p1"), ("u1", "p2"), ("u2", "p3")):
        assert pipeline.test(upload_bytes(user=user, photo_id=photo), key=user.encode()).value
    folders = tmp_path / ".assets"
    deleted = new_photo_deleted(user_id="u1", photo_id="p1", reason="user")
    pipeline.run([request(deleted, EventType.PHOTO_DELETED, 10)])
    assert not (folders / "u1" / "p1").exists() and (folders / "u1" / "p2").is_dir()
    erased = new_user_erased(user_id="u1", reason="account closed")
    pipeline.run([request(erased, EventType.USER_ERASED, 11)])
    assert not (folders / "u1").exists() and (folders / "u2" / "p3").is_dir()


@pytest.mark.broker
def test_a_photo_in_a_bucket_gets_its_assets_there_and_loses_them_with_it(
    s3: Settings, enricher: Enricher
) -> None:
    blobs = BlobStore.from_settings(s3)
    bucket = s3.blobs.s3_buckets[0]
    data = encode_jpeg(load_photo("coffee"))
    uri = blobs.writer(f"s3://{bucket}/photos").put("u1", "p1", data, ".jpg")
    upload = new_upload(
        photo_id="p1",
        user_id="u1",
        content_type="image/jpeg",
        byte_size=len(data),
        blob=uri,
        content_sha256=sha256_hex(data),
    )
    pipeline = with_assets(enricher, s3.blobs.root, blobs)
    record = decoded(pipeline.test(CODEC.encode(EventType.PHOTO_UPLOADED, upload), key=b"u1"))
    items = record["assets"]["items"]
    assert {i["uri"] for i in items} == {f"s3://{bucket}/.assets/u1/p1/{n}" for n in NAMES}
    for item in items:
        assert hashlib.sha256(blobs.get(item["uri"])).hexdigest() == item["sha256"]
    deleted = new_photo_deleted(user_id="u1", photo_id="p1", reason="user")
    pipeline.run([request(deleted, EventType.PHOTO_DELETED, 1)])
    for item in items:
        with pytest.raises(Exception, match="does not exist"):
            blobs.get(item["uri"])
    assert blobs.get(uri) == data  # the photo itself is the photo service's to delete
