"""Fuzzing the batch path: hostile event bytes, blob references and image bytes.

Every input must end as an enriched event or a typed dead letter that fits the limit; the
pipeline never raises, and no input may reach INTERNAL_ERROR (an exception nobody foresaw).
CI runs a fixed sample; `FUZZ_EXAMPLES=2500 pytest -s tests/pipeline/test_fuzz.py` (over
10,000 inputs, batches of up to 8) runs a fresh random one and prints what became of them.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.contracts import EventType
from streams.contracts.codec import SINGLE_OBJECT_MAGIC
from streams.contracts.events import new_upload
from streams.engine import Enricher
from streams.errors import FailureReason
from streams.pipeline import Pipeline
from streams.pipeline.outputs import RECORD_OVERHEAD_BYTES, RawMessage
from tests.pipeline.test_batch import CODEC, LIMIT, SCHEMAS, make_pipeline

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
RANDOM = "FUZZ_EXAMPLES" in os.environ


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(7)
    image = cv2.resize(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), (96, 64))
    seeds = []
    for ext in (".jpg", ".png", ".webp", ".bmp", ".tiff"):
        ok, buffer = cv2.imencode(ext, image)
        assert ok
        seeds.append(buffer.tobytes())
    ok, progressive = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    seeds.append(progressive.tobytes())
    seeds.append(b"GIF89a" + bytes(20))
    return seeds


SEEDS = _seeds()


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    """A real small image, then flipped, overwritten, truncated or spliced bytes."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["flip", "write", "cut", "splice"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "write":
            data[at : at + 4] = draw(st.binary(min_size=4, max_size=4))
        elif action == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(max_size=64))
    return bytes(data)


def blob_references(root: Path) -> st.SearchStrategy[str]:
    """URIs an attacker would try: traversal, NUL, other hosts, schemes, odd files."""
    names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
    return st.one_of(
        names.map(lambda n: (root / n).as_uri() if "\x00" not in n else f"file://{root}/{n}"),
        st.sampled_from(
            [
                f"file://{root}/../../etc/passwd",
                f"file://{root}/fifo",
                f"file://{root}/dir",
                f"file://{root}/photo.jpg",
                f"file://{root}/%00",
                "file://otherhost/etc/passwd",
                "file:///dev/zero",
                "s3://bucket/key",
                "http://127.0.0.1:1/x",
                "",
                "file:",
            ]
        ),
        st.text(max_size=40),
    )


def uploads(root: Path) -> st.SearchStrategy[bytes]:
    blob: st.SearchStrategy[str | bytes] = st.one_of(
        image_bytes(), image_bytes(), image_bytes(), blob_references(root)
    )
    record = st.builds(
        lambda photo, user, size, sha, data: new_upload(
            photo_id=photo,
            user_id=user,
            content_type="image/jpeg",
            byte_size=size,
            blob=data,
            content_sha256=sha,
        ),
        st.text(max_size=30),
        st.text(max_size=30),
        st.integers(-(2**63), 2**63 - 1),
        st.one_of(st.none(), st.none(), st.text("0123456789abcdef", min_size=64, max_size=64)),
        blob,
    )
    return record.map(lambda r: CODEC.encode(EventType.PHOTO_UPLOADED, r))


def messages(root: Path) -> st.SearchStrategy[bytes]:
    fingerprint = SCHEMAS.latest(EventType.PHOTO_UPLOADED).fingerprint
    return st.one_of(
        uploads(root),
        uploads(root),
        uploads(root),
        st.binary(max_size=256),
        st.binary(max_size=256).map(lambda body: SINGLE_OBJECT_MAGIC + fingerprint + body),
        uploads(root).map(lambda v: v[: len(v) // 2]),
    )


@pytest.fixture(scope="module")
def fuzz_pipeline(enricher: Enricher, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("blobs")
    os.mkfifo(root / "fifo")
    (root / "dir").mkdir()
    (root / "photo.jpg").write_bytes(SEEDS[0])
    pipeline = make_pipeline(enricher, root)
    return pipeline


def test_every_hostile_input_ends_as_an_output(fuzz_pipeline: Pipeline) -> None:
    root = fuzz_pipeline.blobs.root
    seen: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(messages(root), min_size=1, max_size=8))
    def check(values: list[bytes]) -> None:
        batch = fuzz_pipeline.run([RawMessage("t", 0, i, b"k", v) for i, v in enumerate(values)])
        assert len(batch.photos) == len(values)
        for photo in batch.photos:
            assert photo.topic in ("enriched", "failed"), photo
            assert photo.value is not None
            assert len(photo.value) + 1 + RECORD_OVERHEAD_BYTES <= LIMIT
            record: dict[str, Any] = CODEC.decode(photo.value).record
            seen[photo.failed.reason if photo.failed else "enriched"] += 1
            if photo.failed is not None:
                assert photo.failed.reason != FailureReason.INTERNAL_ERROR, record["detail"]
                assert record["reason"] in FailureReason.__members__

    check()
    if RANDOM:  # the run's own account, past pytest's capture
        print(f"fuzz: {seen.total()} inputs: {dict(seen.most_common())}", file=sys.__stderr__)
