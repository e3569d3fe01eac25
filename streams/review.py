"""A review page of one user's photos: what the models found, drawn on the photos.

    review = collect(settings, codec, "alice")        # reads photos.enriched, .failed, .shadow
    path = write_page(review, blobs, Path("review"))  # review/index.html and review/img/*

The page is one HTML file and the thumbnails beside it, nothing fetched from elsewhere: each
photo's largest thumbnail with its face boxes (and person ids) and text boxes (and the text
read) drawn over it in percent of the photo, so the boxes stay on the faces at any size; its
labels, tags, quality and near-duplicate group (the best copy marked, with its score); the photos
most like it (cosine of the embeddings); each person's cover (the best-scoring face named with
the person on the page, by the worker's own rule, streams/pipeline/covers.py, shown through its
square); then the user's dead letters with their reasons, and for
the ML team each model variant's answers beside production's on the same photos. Everything an
event says is escaped: OCR text and file names are the user's, not the page's markup.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streams.blobs import BlobStore
from streams.config import Settings
from streams.contracts.codec import Codec
from streams.contracts.schemas import EventType
from streams.errors import PhotoError, UsageError
from streams.pipeline.faces import faces_of
from streams.tail import scan_many

SIMILAR = 5  # photos most like each one, shown under it


@dataclass
class UserReview:
    """What the outcome topics say about one user."""

    user: str
    photos: list[dict[str, Any]] = field(default_factory=list)  # latest PhotoEnriched each
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    shadows: list[dict[str, Any]] = field(default_factory=list)


def collect(settings: Settings, codec: Codec, user: str) -> UserReview:
    """The user's latest enrichment of each photo, dead letters and shadow results, read from
    the topics' beginnings to their ends."""
    topics = settings.topics
    review = UserReview(user)
    latest: dict[str, dict[str, Any]] = {}
    for message in scan_many(settings, codec, [topics.enriched, topics.failed, topics.shadow]):
        event = message.event
        if event is None or event.record.get("user_id") != user:
            continue
        record = event.record
        if event.event_type is EventType.PHOTO_ENRICHED:
            seen = latest.get(record["photo_id"])
            if seen is None or record["attempt"] >= seen["attempt"]:
                latest[record["photo_id"]] = record
        elif event.event_type is EventType.PHOTO_FAILED:
            review.dead_letters.append(record)
        elif event.event_type is EventType.SHADOW_RESULT:
            review.shadows.append(record)
    review.photos = sorted(latest.values(), key=lambda r: r["photo_id"])
    return review


def write_page(review: UserReview, blobs: BlobStore, out: Path) -> Path:
    """``out``/index.html and the thumbnails it shows in ``out``/img; its path."""
    if not review.photos and not review.dead_letters:
        raise UsageError(f"nothing about user {review.user!r} on the outcome topics")
    images = out / "img"
    images.mkdir(parents=True, exist_ok=True)
    shown: dict[str, str] = {}
    for record in review.photos:
        asset = _largest(record)
        if asset is None:
            continue
        extension = "webp" if asset["content_type"] == "image/webp" else "jpg"
        name = f"{len(shown)}.{extension}"  # not the id: ids are the user's text
        try:
            data = blobs.get(asset["uri"], asset["sha256"])
        except PhotoError:  # gone since (forgotten, or the store's): the card says so
            continue
        (images / name).write_bytes(data)
        shown[record["photo_id"]] = f"img/{name}"
    page = out / "index.html"
    page.write_text(render(review, shown), encoding="utf-8")
    return page


def _largest(record: dict[str, Any]) -> dict[str, Any] | None:
    items = (record.get("assets") or {}).get("items") or []
    return max(items, key=lambda i: (i["width"], i["content_type"] == "image/jpeg"), default=None)


def render(review: UserReview, images: dict[str, str]) -> str:
    """The page's HTML: ``images`` maps a photo id to its thumbnail's relative path."""
    similar = most_similar(review.photos, SIMILAR)
    numbers = {r["photo_id"]: i for i, r in enumerate(review.photos)}
    cards = "\n".join(
        _card(r, images.get(r["photo_id"]), similar.get(r["photo_id"], []), numbers)
        for r in review.photos
    )
    return _PAGE.format(
        user=_e(review.user),
        photos=len(review.photos),
        failed=len(review.dead_letters),
        cards=cards,
        people=_people(review.photos, images) or "<p>none</p>",
        dead=_dead_letters(review.dead_letters),
        shadows=_shadows(review.shadows),
        style=_STYLE,
    )


def most_similar(photos: list[dict[str, Any]], k: int) -> dict[str, list[tuple[str, float]]]:
    """Per photo, the ``k`` others with the nearest embeddings (cosine), nearest first."""
    with_vectors = [p for p in photos if p.get("embedding")]
    if len(with_vectors) < 2:
        return {}
    matrix = np.asarray([p["embedding"] for p in with_vectors], dtype=np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    scores = matrix @ matrix.T
    np.fill_diagonal(scores, -np.inf)
    found = {}
    for i, photo in enumerate(with_vectors):
        order = np.argsort(-scores[i])[: min(k, len(with_vectors) - 1)]  # never itself
        found[photo["photo_id"]] = [
            (with_vectors[j]["photo_id"], float(scores[i, j])) for j in order
        ]
    return found


def person_covers(photos: list[dict[str, Any]]) -> dict[str, tuple[str, list[float], int]]:
    """Per person named on the page: the photo and square of its best-scoring face, and how
    many of its faces the page names. The worker's cover weighs the faces the person had
    before it was named too (its first ones), so the two can differ."""
    found: dict[str, tuple[float, str, list[float], int]] = {}
    for record in photos:
        for face, named in zip(faces_of(record), record.get("faces") or [], strict=True):
            person = named.get("person_id")
            if face is None or face.crop is None or not person:
                continue
            score, photo, crop, count = found.get(person, (-1.0, "", [], 0))
            if face.score > score:
                score, photo, crop = face.score, record["photo_id"], list(face.crop)
            found[person] = (score, photo, crop, count + 1)
    return {person: (photo, crop, n) for person, (_, photo, crop, n) in sorted(found.items())}


def _people(photos: list[dict[str, Any]], images: dict[str, str]) -> str:
    widths = {r["photo_id"]: float(r["width"]) for r in photos}
    shown = []
    for number, (person, (photo, crop, count)) in enumerate(person_covers(photos).items()):
        if photo not in images:
            continue
        side = crop[2] - crop[0]
        place = (
            f"width:{100 * widths[photo] / side:.3f}%;left:{-100 * crop[0] / side:.3f}%;"
            f"top:{-100 * crop[1] / side:.3f}%"
        )
        shown.append(
            f'<figure class="person" id="person-{number}" data-person="{_e(person)}">'
            f'<div class="cover"><img src="{_e(images[photo])}" style="{place}" '
            f'alt="cover of {_e(person)}"></div><figcaption>{_e(person)}<br>'
            f"{count} face{'s' if count > 1 else ''}, from {_e(photo)}</figcaption></figure>"
        )
    return "".join(shown)


def _card(
    record: dict[str, Any],
    image: str | None,
    similar: list[tuple[str, float]],
    numbers: dict[str, int],
) -> str:
    width, height = float(record["width"]), float(record["height"])
    boxes = [
        _box("face", face["box"], width, height, _person(face))
        for face in record.get("faces") or []
    ]
    for line in record.get("ocr") or []:
        xs, ys = [p["x"] for p in line["quad"]], [p["y"] for p in line["quad"]]
        corners = {"x1": min(xs), "y1": min(ys), "x2": max(xs), "y2": max(ys)}
        boxes.append(_box("text", corners, width, height, line["text"]))
    picture = (
        f'<img src="{_e(image)}" alt="photo {_e(record["photo_id"])}">'
        if image
        else '<div class="missing">no thumbnail</div>'
    )
    facts = [
        _fact(
            "labels", ", ".join(f"{x['name']} {x['score']:.2f}" for x in record.get("labels") or [])
        ),
        _fact("tags", ", ".join(t["name"] for t in record.get("tags") or [])),
        _fact("text", " | ".join(line["text"] for line in record.get("ocr") or [])),
        _fact("faces", str(len(record.get("faces") or []))),
        _fact("quality", _quality(record.get("quality"))),
        _fact("duplicates", _group(record.get("best_shot"), numbers)),
        _fact(
            "similar",
            " ".join(
                f'<a href="#photo-{numbers[p]}">{_e(p)}</a> {score:.2f}' for p, score in similar
            ),
            escape=False,
        ),
    ]
    return (
        f'<figure class="photo" id="photo-{numbers[record["photo_id"]]}" '
        f'data-photo="{_e(record["photo_id"])}"><div class="frame">{picture}{"".join(boxes)}'
        f"</div><figcaption><b>{_e(record['photo_id'])}</b> {int(width)}x{int(height)}"
        f"<dl>{''.join(facts)}</dl></figcaption></figure>"
    )


def _box(kind: str, box: dict[str, float], width: float, height: float, label: str) -> str:
    left, top = 100 * box["x1"] / width, 100 * box["y1"] / height
    w, h = 100 * (box["x2"] - box["x1"]) / width, 100 * (box["y2"] - box["y1"]) / height
    return (
        f'<div class="box {kind}" style="left:{left:.3f}%;top:{top:.3f}%;width:{w:.3f}%;'
        f'height:{h:.3f}%" title="{_e(label)}"><span>{_e(label)}</span></div>'
    )


def _person(face: dict[str, Any]) -> str:
    return str(face.get("person_id") or "face")


def _quality(quality: dict[str, Any] | None) -> str:
    if not quality:
        return ""
    blurry = " blurry" if quality["is_blurry"] else ""
    return (
        f"sharpness {quality['blur_variance']:.0f}{blurry}, brightness {quality['brightness']:.2f}"
    )


def _group(shot: dict[str, Any] | None, numbers: dict[str, int]) -> str:
    if not shot or shot["group_size"] < 2:
        return ""
    best = "the best copy" if shot["best"] else f"best copy: {shot['best_photo_id']}"
    return f"group {shot['group_id']} of {shot['group_size']}, {best} (score {shot['score']:.2f})"


def _fact(name: str, value: str, *, escape: bool = True) -> str:
    if not value:
        return ""
    return f"<dt>{name}</dt><dd>{_e(value) if escape else value}</dd>"


def _dead_letters(letters: Iterable[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{_e(r.get('photo_id') or '-')}</td><td>{_e(r['reason'])}</td>"
        f"<td>{_e(r['stage'])}</td><td>{_e(r['detail'])}</td></tr>"
        for r in letters
    )
    return rows or '<tr><td colspan="4">none</td></tr>'


def _shadows(results: Iterable[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        fields = r.get("variant_fields") or {}
        rows.append(
            f"<tr><td>{_e(r['photo_id'])}</td><td>{_e(r['mode'])}</td><td>{_e(r['task'])}</td>"
            f"<td>{_e(str(r['production']))}</td><td>{_e(str(r['variant']))}</td>"
            f"<td>{_e(str(r.get('agreement')))}</td><td>{_e(r.get('error') or '')}"
            f"{_e(_summary(fields))}</td></tr>"
        )
    return "".join(rows) or '<tr><td colspan="7">none</td></tr>'


def _summary(fields: dict[str, Any]) -> str:
    labels = fields.get("labels") or []
    return f"{labels[0]['name']} {labels[0]['score']:.2f}" if labels else ""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_STYLE = """
body { font-family: sans-serif; margin: 1em; background: #fafafa; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; }
.photo { width: 360px; margin: 0; background: #fff; border: 1px solid #ddd; padding: 6px; }
.frame { position: relative; line-height: 0; }
.frame img { width: 100%; height: auto; display: block; }
.box { position: absolute; border: 2px solid; box-sizing: border-box; }
.box span { position: absolute; top: -1.3em; left: 0; font-size: 11px; line-height: 1.2;
  background: rgba(255,255,255,.85); white-space: nowrap; }
.face { border-color: #e6194b; }
.text { border-color: #3cb44b; }
dl { font-size: 12px; margin: .4em 0 0; }
dt { font-weight: bold; float: left; margin-right: .4em; }
dd { margin: 0 0 .2em; }
table { border-collapse: collapse; font-size: 12px; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
.person { width: 120px; margin: 0; font-size: 12px; }
.cover { position: relative; width: 120px; height: 120px; overflow: hidden; }
.cover img { position: absolute; height: auto; max-width: none; }
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Darkroom review: {user}</title>
<style>{style}</style></head>
<body>
<h1>Darkroom review: {user}</h1>
<p>{photos} photos enriched, {failed} dead letters. Boxes: faces (red, with their person) and
text (green, with what was read), drawn on each photo's largest thumbnail.</p>
<section class="grid">
{cards}
</section>
<h2>People</h2>
<p>Each person's cover: their best face on this page (size, sharpness, pose), with a margin.</p>
<section class="grid" id="people">{people}</section>
<h2>Dead letters</h2>
<table id="dead-letters"><tr><th>photo</th><th>reason</th><th>stage</th><th>detail</th></tr>
{dead}</table>
<h2>Model variants beside production</h2>
<table id="shadows"><tr><th>photo</th><th>mode</th><th>task</th><th>production</th>
<th>variant</th><th>agreement</th><th>variant's answer</th></tr>
{shadows}</table>
</body></html>
"""
