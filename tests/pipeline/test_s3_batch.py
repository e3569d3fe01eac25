"""A batch whose photos live in object storage: the real local server, the real models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.blobs import BlobStore, sha256_hex
from streams.config import Settings
from streams.contracts import EventType
from streams.contracts.events import new_upload
from streams.engine import Enricher
from streams.errors import FailureReason
from streams.pipeline.outputs import RawMessage
from streams.samples import encode_jpeg, load_photo
from tests.blobs.proxy import FreezingProxy
from tests.blobs.s3server import LocalS3
from tests.conftest import SILENT_STORE
from tests.pipeline.test_batch import CODEC, decoded, make_pipeline

PHOTOS = ["chelsea", "coffee", "astronaut", "rocket"]


@pytest.fixture
def silent_on_coffee(local_s3: LocalS3) -> Iterator[FreezingProxy]:
    proxy = FreezingProxy(local_s3.port, hang=lambda line: b"/coffee.jpg " in line)
    yield proxy
    proxy.close()


def test_the_other_photos_come_out_when_the_store_goes_silent_on_one(
    s3: Settings, enricher: Enricher, silent_on_coffee: FreezingProxy
) -> None:
    writer = BlobStore.from_settings(s3).writer(f"s3://{s3.blobs.s3_buckets[0]}/batch")
    messages = []
    for offset, name in enumerate(PHOTOS):
        data = encode_jpeg(load_photo(name))
        uri = writer.put("u1", name, data, ".jpg")
        upload = new_upload(
            photo_id=name,
            user_id="u1",
            content_type="image/jpeg",
            byte_size=len(data),
            blob=uri,
            content_sha256=sha256_hex(data),
        )
        messages.append(
            RawMessage("t", 0, offset, b"u1", CODEC.encode(EventType.PHOTO_UPLOADED, upload))
        )
    blobs = s3.blobs.model_copy(update={"s3_endpoint": silent_on_coffee.endpoint, **SILENT_STORE})
    pipeline = make_pipeline(enricher, s3.blobs.root)
    pipeline.blobs = BlobStore.from_settings(s3.model_copy(update={"blobs": blobs}))

    batch = pipeline.run(messages)

    by_name = dict(zip(PHOTOS, batch.photos, strict=True))
    assert {n for n, p in by_name.items() if p.topic == "enriched"} == set(PHOTOS) - {"coffee"}
    assert decoded(by_name["chelsea"])["labels"]
    letter = decoded(by_name["coffee"])
    assert (letter["reason"], letter["stage"]) == (
        FailureReason.BLOB_STORE_UNAVAILABLE,
        "fetch_blob",
    )
    assert "safe to re-drive" in letter["detail"]
    assert letter["original_value"] == messages[1].value  # the upload, whole, for the re-drive
    assert len(silent_on_coffee.hung) == SILENT_STORE["s3_max_attempts"]
