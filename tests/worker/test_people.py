"""People in the worker: faces grouped into persons in its tables, the routed queries, and the
same ids and state after a kill -9 as in a clean run (streams/pipeline/people.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from streams.config import Settings
from streams.pipeline.faces import faces_of
from streams.samples import encode_jpeg, load_photo
from tests.worker.harness import (
    WorkerProcess,
    count,
    outcomes,
    running,
    wait_consumed,
    wait_for,
    wait_for_outcomes,
)
from tests.worker.publishing import publish_folder

pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]

# Three public-domain portraits of one man (face_recognition's test images), one mirrored copy,
# and two other people (streams/samples.py says where each comes from)
OBAMA = ["obama", "obama2", "obama3", "obama2-mirror"]
OTHERS = ["biden", "astronaut"]


def write_people(folder: Path, names: list[str] = OBAMA + OTHERS) -> None:
    user = folder / "carol"
    user.mkdir(parents=True)
    for name in names:
        image = load_photo(name.removesuffix("-mirror"))
        image = image[:, ::-1] if name.endswith("-mirror") else image
        (user / f"{name}.jpg").write_bytes(encode_jpeg(image))


def people_of(worker: WorkerProcess) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """/users/carol/people and each person's photos."""
    status, listed = worker.get("/users/carol/people")
    assert status == 200, listed
    photos = {}
    for person in listed["people"]:
        status, body = worker.get(f"/users/carol/people/{person['person_id']}/photos")
        assert status == 200, body
        photos[person["person_id"]] = body["photos"]
    return listed, photos


@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)  # above the transport
def test_faces_become_a_person_with_the_same_id_after_a_kill_minus_9(
    stream_settings: Settings, tmp_path: Path
) -> None:
    settings = stream_settings.model_copy(
        update={"worker": stream_settings.worker.model_copy(update={"batch_size": 1})}
    )
    # two photos before the kill and the rest after it: however fast the worker, the kill
    # lands with work left (it once enriched all six between the check and the kill)
    first, rest = OBAMA[:2], OBAMA[2:] + OTHERS
    write_people(tmp_path / "first", first)
    write_people(tmp_path / "rest", rest)
    delivered = publish_folder(settings, tmp_path / "first")
    crashy = WorkerProcess(settings, tmp_path, "crashy")
    crashy.start().wait_ready()
    wait_for(lambda: count(settings, settings.topics.enriched) >= 1, 90, "a first outcome")
    crashy.kill()
    delivered += publish_folder(settings, tmp_path / "rest")
    by_name = {d.file.path.stem: d.photo_id for d in delivered}
    assert count(settings, settings.topics.enriched) < len(delivered), "too late to prove a thing"

    with running(crashy):  # same data folder: its RocksDB, the committed offsets
        wait_for_outcomes(settings, len(delivered))
        wait_consumed(settings)
        listed, photos = wait_for(lambda: people_of(crashy), 30, "carol's people")
        status, body = crashy.get("/users/carol/people/pnot-a-person/photos")
        assert status == 404 and "no person" in body["error"]

    [obama] = listed["people"]  # Biden and the astronaut have one face each: candidates
    assert obama["faces"] == len(OBAMA) and obama["cover"]["photo_id"] in {
        by_name[n] for n in OBAMA
    }
    assert set(photos[obama["person_id"]]) == {by_name[n] for n in OBAMA}
    enriched, _ = outcomes(settings)
    # the cover: the best-scoring of the person's faces (streams.pipeline.covers), its square
    # around the face, and a preview that exists
    theirs = [e for e in enriched if e["photo_id"] in {by_name[n] for n in OBAMA}]
    scored = [(f.score, e["photo_id"], f) for e in theirs for f in faces_of(e) if f is not None]
    _, best, face = max(scored, key=lambda s: s[0])
    cover = obama["cover"]
    assert cover["photo_id"] == best and cover["crop"] == face.crop
    x1, y1, x2, y2 = cover["crop"]
    assert x1 <= face.box[0] and y1 <= face.box[1] and x2 >= face.box[2] and y2 >= face.box[3]
    assert Path(unquote(urlsplit(cover["preview"]["uri"]).path)).is_file()
    given = {(e["photo_id"], f["person_id"]) for e in enriched for f in e["faces"] or []}
    named = {photo for photo, person in given if person == obama["person_id"]}
    assert named <= {by_name[n] for n in OBAMA} and len(named) >= len(OBAMA) - 2  # from the 3rd
    assert {p for photo, p in given if photo in {by_name[n] for n in OTHERS}} == {None}

    clean_settings = settings.model_copy(
        update={
            "worker": settings.worker.model_copy(update={"app_id": settings.worker.app_id + "-c"})
        }
    )
    clean = WorkerProcess(clean_settings, tmp_path, "clean")
    with running(clean):
        wait_for(lambda: people_of(clean) == (listed, photos), 120, "a clean run's people")
