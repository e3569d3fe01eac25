"""The engine on real photos: golden results, near-duplicates, and failures kept to their photo."""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
import piexif
import pytest

from streams.engine import Enriched, Enricher, Failed, PhotoInput
from streams.errors import FailureReason
from streams.imaging import exif as exif_module
from streams.imaging import header
from streams.samples import encode_jpeg, encode_png, load_photo, png_bomb_header


def enrich_one(enricher: Enricher, name: str, data: bytes | None = None) -> Enriched:
    (result,) = enricher.enrich([PhotoInput(name, data or encode_jpeg(load_photo(name)))])
    assert isinstance(result, Enriched), result
    return result


def label_names(fields: dict[str, Any]) -> list[str]:
    return [label["name"] for label in fields["labels"]]


def test_chelsea_is_a_cat(enricher: Enricher) -> None:
    fields = enrich_one(enricher, "chelsea").fields
    assert fields["labels"][0]["name"] in {"Egyptian cat", "tabby", "tiger cat"}
    assert fields["labels"][0]["score"] > 0.5
    assert fields["faces"] == []  # a cat face is not a human face


def test_coffee_is_espresso_without_faces(enricher: Enricher) -> None:
    result = enrich_one(enricher, "coffee")
    assert label_names(result.fields)[0] in {"espresso", "cup", "coffee mug"}
    assert result.fields["faces"] == []
    assert result.fields["moderation"]["scores"]["nsfw"] < 0.2
    assert result.fields["moderation"]["flagged"] is False


def test_astronaut_has_exactly_one_face_with_landmarks(enricher: Enricher) -> None:
    result = enrich_one(enricher, "astronaut")
    (face,) = result.fields["faces"]
    box = face["box"]
    assert face["score"] > 0.8
    assert 150 < box["x1"] < box["x2"] < 300 and 50 < box["y1"] < box["y2"] < 200
    left_eye, right_eye, nose = face["landmarks"][:3]
    assert left_eye["x"] < nose["x"] < right_eye["x"]
    assert box["x1"] <= nose["x"] <= box["x2"] and box["y1"] <= nose["y"] <= box["y2"]


def test_every_crop_keeps_the_astronauts_face_whole(enricher: Enricher) -> None:
    result = enrich_one(enricher, "astronaut")
    (face,) = result.fields["faces"]
    crops = result.fields["crops"]
    assert [c["ratio"] for c in crops] == ["1:1", "4:5", "16:9"]
    for crop in crops:
        box, inner = crop["box"], face["box"]
        assert (crop["basis"], crop["faces_whole"]) == ("faces", 1), crop
        assert box["x1"] <= inner["x1"] and box["y1"] <= inner["y1"], crop
        assert box["x2"] >= inner["x2"] and box["y2"] >= inner["y2"], crop
    without = enrich_one(enricher, "coffee").fields["crops"]
    assert {c["basis"] for c in without} <= {"salient"}  # no face: where the cup is
    assert result.produced_by["crops"]["name"] == "darkroom-crops"


def test_a_face_gets_dlibs_descriptor_and_its_mirror_the_same_person(enricher: Enricher) -> None:
    (face,) = enrich_one(enricher, "astronaut").fields["faces"]
    (mirrored,) = enrich_one(enricher, "astronaut_mirror").fields["faces"]
    vector, other = np.array(face["embedding"]), np.array(mirrored["embedding"])
    assert vector.shape == (128,)
    assert 1.1 < np.linalg.norm(vector) < 1.7  # raw, as dlib compares them (not normalised)
    assert np.linalg.norm(vector - other) < 0.6  # dlib's "same person"


def test_tags_people_search_by(enricher: Enricher) -> None:
    def tags(name: str) -> dict[str, str]:
        return {t["name"]: t["source"] for t in enrich_one(enricher, name).fields["tags"]}

    assert tags("chelsea") == {
        "Cat": "labels",
        "Pet": "labels",
        "Mammal": "labels",
        "Animal": "labels",
    }
    assert "Drink" in tags("coffee")
    assert tags("astronaut") == {"Person": "faces"}
    assert tags("page") == {"Text": "ocr", "Document": "ocr"}  # its top label is "brass" 0.10


def test_ocr_reads_the_sign_and_the_page(enricher: Enricher) -> None:
    sign = enrich_one(enricher, "sign").fields["ocr"]
    assert [line["text"] for line in sign] == ["OPEN 24 HOURS"]
    quad = sign[0]["quad"]
    assert len(quad) == 4 and 30 <= quad[0]["x"] <= 80 and 30 <= quad[0]["y"] <= 80
    page = " ".join(line["text"] for line in enrich_one(enricher, "page").fields["ocr"])
    assert "markers" in page and "segmentation" in page
    assert enrich_one(enricher, "chelsea").fields["ocr"] == []


def test_every_field_names_its_producer(enricher: Enricher) -> None:
    result = enrich_one(enricher, "astronaut")
    produced = result.produced_by
    assert (
        produced["labels"]
        == produced["embedding"]
        == {"name": "mobilenet_v2", "version": "torchvision-imagenet1k-v1"}
    )
    assert produced["faces"]["name"] == "blazeface"
    assert produced["faces.embedding"]["name"] == "dlib_face_resnet"
    assert produced["moderation"]["name"] == "open_nsfw_int8"
    assert produced["ocr"]["name"] == "ppocr_det_gated+ppocr_rec"
    assert {"quality", "dominant_colors", "phash"} <= set(produced)
    assert set(enricher.model_versions) == {
        "mobilenet_v2",
        "blazeface",
        "dlib_face_resnet",
        "open_nsfw_int8",
        "ppocr_det_gated",
        "ppocr_rec",
        "darkroom-thumbnails",  # a photo recorded without its thumbnails is not done
    }
    assert result.timings_ms["decode"] > 0 and result.processing_ms > 0


def test_embedding_finds_near_duplicates(enricher: Enricher) -> None:
    chelsea = load_photo("chelsea")
    copy = cv2.convertScaleAbs(cv2.resize(chelsea, None, fx=0.5, fy=0.5), alpha=1.1, beta=10)
    photos = {
        "original": encode_jpeg(chelsea),
        "copy": encode_jpeg(copy, quality=40),
        "coffee": encode_jpeg(load_photo("coffee")),
        "astronaut": encode_jpeg(load_photo("astronaut")),
    }
    results = enricher.enrich([PhotoInput(k, v) for k, v in photos.items()])
    vectors = {
        r.photo_id: np.array(r.fields["embedding"]) for r in results if isinstance(r, Enriched)
    }
    assert all(abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors.values())
    same = float(vectors["original"] @ vectors["copy"])
    others = [float(vectors["original"] @ vectors[k]) for k in ("coffee", "astronaut")]
    assert same > 0.85 and max(others) < 0.6, (same, others)


CORRUPT: dict[str, tuple[bytes, FailureReason]] = {
    "empty": (b"", FailureReason.CORRUPT_IMAGE),
    "random": (
        bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)),
        FailureReason.UNSUPPORTED_FORMAT,
    ),
    "text": (b"hello, this is a text file\n" * 10, FailureReason.UNSUPPORTED_FORMAT),
    "truncated": (encode_jpeg(load_photo("coffee"))[:6000], FailureReason.CORRUPT_IMAGE),
    "bomb": (png_bomb_header(), FailureReason.IMAGE_TOO_LARGE),
}


def test_a_bad_photo_never_costs_its_batch(enricher: Enricher) -> None:
    good = encode_jpeg(load_photo("coffee"))
    items = [PhotoInput(f"good-{i}", good) for i in range(11)]
    items[3:3] = [PhotoInput(name, data) for name, (data, _) in CORRUPT.items()]
    results = enricher.enrich(items)
    assert [r.photo_id for r in results] == [i.photo_id for i in items]
    failed = {r.photo_id: r for r in results if isinstance(r, Failed)}
    assert {name: f.error.reason for name, f in failed.items()} == {
        name: reason for name, (_, reason) in CORRUPT.items()
    }
    assert all(f.stage == "decode_image" and f.detail for f in failed.values())
    assert sum(isinstance(r, Enriched) for r in results) == 11


def test_an_inference_failure_is_isolated_to_its_photo(
    enricher: Enricher, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = next(r for r in enricher.runners if r.name == "open_nsfw_int8")
    original = runner.run

    def flaky(works: Any) -> Any:
        if any(w.photo.width == 451 for w in works):  # chelsea poisons any batch it is in
            raise RuntimeError("simulated kernel failure")
        return original(works)

    monkeypatch.setattr(runner, "run", flaky)
    names = ["coffee", "chelsea", "astronaut", "rocket"]
    results = enricher.enrich([PhotoInput(n, encode_jpeg(load_photo(n))) for n in names])
    outcome = {r.photo_id: r for r in results}
    failed = outcome["chelsea"]
    assert isinstance(failed, Failed)
    assert failed.error.reason is FailureReason.INFERENCE_ERROR
    assert failed.stage == "infer:open_nsfw_int8" and "simulated kernel failure" in failed.detail
    assert all(isinstance(outcome[n], Enriched) for n in ("coffee", "astronaut", "rocket"))


def test_pipelined_batches_match_single_batches(enricher: Enricher) -> None:
    names = ["coffee", "chelsea", "astronaut", "rocket", "sign"]
    data = [PhotoInput(n, encode_png(load_photo(n))) for n in names]
    batches = [data[:2], data[2:4], data[4:]]
    piped = [r for batch in enricher.enrich_batches(batches) for r in batch]
    direct = enricher.enrich(data)
    assert [r.photo_id for r in piped] == names
    for a, b in zip(piped, direct, strict=True):
        assert isinstance(a, Enriched) and isinstance(b, Enriched)
        assert a.fields["labels"] == b.fields["labels"] and a.fields["phash"] == b.fields["phash"]


def test_an_unexpected_error_while_preparing_stays_with_its_photo(
    enricher: Enricher, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = enricher.decoder.decode

    def decode(data: bytes, **kwargs: Any) -> Any:
        photo = original(data, **kwargs)
        if photo.width == 451:  # chelsea
            raise MemoryError("simulated")
        return photo

    monkeypatch.setattr(enricher.decoder, "decode", decode)
    results = enricher.enrich(
        [PhotoInput(n, encode_jpeg(load_photo(n))) for n in ("coffee", "chelsea", "rocket")]
    )
    failed = results[1]
    assert isinstance(failed, Failed) and failed.reason == "INTERNAL_ERROR"
    assert failed.stage == "decode_image" and "MemoryError: simulated" in failed.detail
    assert isinstance(results[0], Enriched) and isinstance(results[2], Enriched)


def test_exif_is_parsed_once_and_serves_both_orientation_and_facts(
    enricher: Enricher, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = header.jpeg_exif_tiff

    def counted(data: bytes) -> bytes | None:
        calls.append(1)
        return original(data)

    # every reader of a JPEG's EXIF goes through this one function (exifread's facts and, before,
    # the decoder's own orientation walk)
    monkeypatch.setattr(header, "jpeg_exif_tiff", counted)
    monkeypatch.setattr(exif_module, "jpeg_exif_tiff", counted)
    image = load_photo("chelsea")  # 451x300, landscape as stored
    tagged = io.BytesIO()
    exif = {"0th": {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Orientation: 6}}
    piexif.insert(piexif.dump(exif), encode_jpeg(image), tagged)
    result = enrich_one(enricher, "chelsea", tagged.getvalue())
    assert len(calls) == 1  # one parse for the whole photo
    assert result.fields["exif"]["camera_make"] == "Canon"
    assert result.fields["exif"]["orientation"] == 6
    assert (result.fields["width"], result.fields["height"]) == (300, 451)  # turned upright
