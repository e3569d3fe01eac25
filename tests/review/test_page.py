"""The review page: what the events say, drawn and escaped; then in a real browser."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from streams.blobs import BlobStore
from streams.blobs.assets import AssetStore
from streams.engine import Enricher
from streams.pipeline.faces import faces_of
from streams.pipeline.people import PeoplePolicy, PeopleSearch
from streams.review import UserReview, most_similar, render, write_page
from tests.pipeline.test_batch import SETTINGS, decoded, make_pipeline, upload_bytes
from tests.pipeline.test_covers import People
from tests.tools_required import require_tool


def enriched(enricher: Enricher, root: Path, photos: list[str]) -> list[dict[str, Any]]:
    """The PhotoEnriched records of ``photos`` of user u1, their thumbnails under ``root``."""
    blobs = BlobStore(root, SETTINGS.blobs.max_bytes)
    people = PeopleSearch(People(), PeoplePolicy(min_faces=1))  # one face names a person
    pipeline = make_pipeline(enricher, root, assets=AssetStore(blobs, ".assets"), people=people)
    return [decoded(pipeline.test(upload_bytes(name, photo_id=name), key=b"u1")) for name in photos]


def test_text_from_the_events_is_escaped_and_boxes_are_in_percent_of_the_photo() -> None:
    record = {
        "photo_id": "p<1>",
        "width": 200,
        "height": 100,
        "faces": [{"box": {"x1": 50, "y1": 25, "x2": 100, "y2": 75}, "person_id": "pA"}],
        "ocr": [
            {
                "text": "<script>alert(1)</script>",
                "quad": [
                    {"x": 0, "y": 0},
                    {"x": 20, "y": 0},
                    {"x": 20, "y": 10},
                    {"x": 0, "y": 10},
                ],
            }
        ],
        "labels": [],
        "attempt": 1,
    }
    page = render(UserReview("u&1", [record]), {"p<1>": "img/0.jpg"})
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "p&lt;1&gt;" in page and "u&amp;1" in page
    assert 'style="left:25.000%;top:25.000%;width:25.000%;height:50.000%"' in page
    assert 'style="left:0.000%;top:0.000%;width:10.000%;height:10.000%"' in page


def test_similar_photos_are_the_nearest_embeddings_first() -> None:
    photos = [
        {"photo_id": "a", "embedding": [1.0, 0.0]},
        {"photo_id": "b", "embedding": [0.9, 0.1]},
        {"photo_id": "c", "embedding": [0.0, 1.0]},
    ]
    found = most_similar(photos, 5)  # more than there are: the others, never itself
    assert [p for p, _ in found["a"]] == ["b", "c"]
    assert [p for p, _ in found["c"]] == ["b", "a"]


@pytest.mark.timeout(180)
def test_the_page_renders_in_a_browser_with_boxes_on_the_faces(
    enricher: Enricher, tmp_path: Path
) -> None:
    chromium = require_tool("chromium", "chromium")
    driver_path = require_tool("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    records = enriched(enricher, tmp_path / "blobs", ["astronaut", "chelsea", "sign"])
    page = write_page(
        UserReview("u1", records), BlobStore(tmp_path / "blobs", 10**8), tmp_path / "review"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.get(page.as_uri())
        loaded = browser.execute_script(
            "return [...document.images].map(i => i.complete && i.naturalWidth > 0)"
        )
        assert loaded == [True] * 4, loaded  # three photos and a cover
        # the astronaut's face box sits where the event says, relative to the drawn image
        (face,) = records[0]["faces"]
        box, image = browser.execute_script(
            "const f = document.querySelector('#photo-0 .face').getBoundingClientRect();"
            "const i = document.querySelector('#photo-0 img').getBoundingClientRect();"
            "return [[f.left, f.top, f.right, f.bottom], [i.left, i.top, i.width, i.height]];"
        )
        width, height = records[0]["width"], records[0]["height"]
        expected = [face["box"][k] for k in ("x1", "y1", "x2", "y2")]
        drawn = [
            (box[0] - image[0]) / image[2] * width,
            (box[1] - image[1]) / image[3] * height,
            (box[2] - image[0]) / image[2] * width,
            (box[3] - image[1]) / image[3] * height,
        ]
        assert all(abs(d - e) <= 0.02 * width for d, e in zip(drawn, expected, strict=True))
        # the person's cover: a 120 px square through which the whole face shows
        cover, shown = browser.execute_script(
            "const c = document.querySelector('#person-0 .cover').getBoundingClientRect();"
            "const i = document.querySelector('#person-0 img').getBoundingClientRect();"
            "return [[c.left, c.top, c.width, c.height], [i.left, i.top, i.width, i.height]];"
        )
        assert cover[2] == cover[3] == 120
        # what shows through it is the face's square (streams.pipeline.covers), to 1%
        (square,) = [f.crop for f in faces_of(records[0]) if f is not None]
        seen = [
            (cover[0] - shown[0]) / shown[2] * width,
            (cover[1] - shown[1]) / shown[3] * height,
            (cover[0] + cover[2] - shown[0]) / shown[2] * width,
            (cover[1] + cover[3] - shown[1]) / shown[3] * height,
        ]
        assert square is not None
        assert all(abs(s - q) <= 0.01 * width for s, q in zip(seen, square, strict=True)), seen
        assert expected[0] > seen[0] and expected[2] < seen[2], "the face inside, with margin"
        text = browser.execute_script("return document.querySelector('#photo-2 .text').title")
        assert text == "OPEN 24 HOURS"
        shot = tmp_path / "review.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        kept = os.environ.get("TEST_ARTIFACTS")
        if kept:  # the test run keeps its screenshot where asked (make test: .darkroom/)
            Path(kept).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(kept) / "review.png")
    finally:
        browser.quit()


def test_a_thumbnail_gone_from_the_store_leaves_its_card_without_one(tmp_path: Path) -> None:
    record = {
        "photo_id": "p1",
        "width": 10,
        "height": 10,
        "attempt": 1,
        "assets": {
            "items": [
                {
                    "name": "256.jpg",
                    "width": 10,
                    "height": 10,
                    "content_type": "image/jpeg",
                    "uri": (tmp_path / "blobs" / ".assets" / "gone.jpg").as_uri(),
                    "sha256": "0" * 64,
                }
            ]
        },
    }
    page = write_page(UserReview("u1", [record]), BlobStore(tmp_path / "blobs", 10**6), tmp_path)
    assert "no thumbnail" in page.read_text() and not list((tmp_path / "img").iterdir())
