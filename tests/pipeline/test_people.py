"""People clustering rules, without Kafka or models (streams/pipeline/people.py)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

import numpy as np

from streams.pipeline import faces, people, people_state
from streams.pipeline.faces import Face, Given, PhotoFaces
from streams.pipeline.keys import entry_key, user_prefix
from streams.pipeline.people import PeoplePolicy, PeopleSearch

POLICY = PeoplePolicy(join_distance=0.5, merge_distance=0.4, min_faces=3)
MODEL = "dlib_face_resnet@1"
BOX = [10.0, 10.0, 60.0, 70.0]


def person(seed: int) -> np.ndarray:
    """A face-like 128-d vector: people are ~0.8 apart, as dlib's descriptors of strangers."""
    vector = np.random.default_rng(seed).normal(0.0, 1.0, 128)
    return (vector / np.linalg.norm(vector) * 0.6).astype(np.float32)


def photo_of(seed: int, jitter: int, scale: float = 0.1) -> np.ndarray:
    """Another photo of person ``seed``: a small step away (same person: ~0.1 apart)."""
    step = np.random.default_rng(1000 + 97 * seed + jitter).normal(0.0, 1.0, 128)
    return (person(seed) + step / np.linalg.norm(step) * scale).astype(np.float32)


@dataclass
class Store:
    """The table as the search reads it: the rows a worker writes (people.PeopleFindings.rows),
    each round-tripped through JSON, as Faust does."""

    rows: dict[str, str] = field(default_factory=dict)
    given: dict[str, Given] = field(default_factory=dict)

    def people_of(self, user_id: str) -> people_state.State | None:
        prefix = user_prefix(user_id)
        found = ((k, json.loads(v)) for k, v in self.rows.items() if k.startswith(prefix))
        return people_state.from_rows(user_id, found)

    def clusters_of(self, user_id: str, photo_id: str) -> Given | None:
        return self.given.get(photo_id)

    def record(self, found: people.PeopleFindings, photos: list[str]) -> None:
        for key, row in found.rows.items():
            if row is None:
                del self.rows[key]
            else:
                self.rows[key] = json.dumps(row)
        for photo, assigned in zip(photos, found.assigned, strict=True):
            assert assigned is not None
            self.given[photo] = Given(MODEL, assigned.clusters)


def run(
    store: Store, batch: list[tuple[str, np.ndarray]], user: str = "u"
) -> people.PeopleFindings:
    search = PeopleSearch(store, POLICY)
    photos = [
        PhotoFaces(user, photo, MODEL, [Face(0, list(map(float, v)), BOX)]) for photo, v in batch
    ]
    found = search.search(photos)
    store.record(found, [photo for photo, _ in batch])
    return found


def test_a_cluster_becomes_a_person_at_min_faces_and_strangers_stay_apart() -> None:
    store = Store()
    found = run(store, [(f"a{i}", photo_of(1, i)) for i in range(3)] + [("b0", photo_of(2, 0))])

    first = found.assigned[0]
    assert first is not None and first.clusters[0] is not None
    assert {a.clusters[0] for a in found.assigned[:3] if a} == {first.clusters[0]}
    assert [a.persons[0] for a in found.assigned if a] == [None, None, first.clusters[0], None]
    state = found.states["u"]
    assert [p["person_id"] for p in people_state.persons(state, 3)] == [first.clusters[0]]
    assert people_state.persons(state, 3)[0]["faces"] == 3
    assert len(state["clusters"]) == 2  # the stranger is a candidate


def test_ids_are_named_after_the_face_that_started_them() -> None:
    assert people_state.cluster_id("u", "a0", 0) == people_state.cluster_id("u", "a0", 0)
    assert people_state.cluster_id("u", "a0", 0) != people_state.cluster_id("u", "a0", 1)
    assert people_state.cluster_id("u", "a0", 0) == "p2a83be98691d60e"  # pinned: ids outlive code


def test_batch_boundaries_change_neither_ids_nor_state() -> None:
    faces = [(f"x{i}", photo_of(i % 4, i, scale=0.05 + 0.02 * (i % 5))) for i in range(40)]
    whole, split = Store(), Store()
    together = run(whole, faces)
    apart: list[people.Assigned | None] = []
    start = 0
    for size in [1, 7, 3, 11, 2, 16]:
        apart += run(split, faces[start : start + size]).assigned
        start += size
    assert start == len(faces)
    assert [a.clusters for a in together.assigned if a] == [a.clusters for a in apart if a]
    assert whole.rows == split.rows


def test_a_photo_processed_again_keeps_its_clusters_and_counts_nothing_twice() -> None:
    store = Store()
    run(store, [(f"a{i}", photo_of(1, i)) for i in range(4)])
    before = copy.deepcopy(store.rows)
    again = run(store, [("a2", photo_of(1, 2))])
    assert again.assigned[0] is not None
    assert again.assigned[0].clusters == store.given["a2"].clusters
    assert store.rows == before
    assert again.changes == []


def test_near_clusters_merge_into_the_older_and_the_younger_id_still_resolves() -> None:
    store = Store()
    # two starts 0.55 apart (too far to join), then faces in between pull the centroids together
    left = person(5)
    direction = person(6) - left
    right = left + direction / np.linalg.norm(direction) * 0.55
    found = run(
        store, [("l", left), ("r", right)] + [(f"m{i}", (left + right) / 2) for i in range(3)]
    )
    older, younger = people_state.cluster_id("u", "l", 0), people_state.cluster_id("u", "r", 0)
    state = found.states["u"]
    assert list(state["clusters"]) == [older]
    assert state["clusters"][older]["count"] == 5
    assert people_state.resolve(state, younger) == older
    assert ("merge", "u", younger, older) in found.changes
    assert found.assigned[1] is not None and found.assigned[1].clusters == [younger]  # then
    assert found.assigned[-1] is not None and found.assigned[-1].clusters == [older]


def test_a_new_face_model_starts_the_users_people_afresh() -> None:
    store = Store()
    run(store, [(f"a{i}", photo_of(1, i)) for i in range(3)])
    search = PeopleSearch(store, POLICY)
    found = search.search(
        [PhotoFaces("u", "a9", "other@2", [Face(0, list(map(float, photo_of(1, 9))), BOX)])]
    )
    state = found.states["u"]
    assert state["model"] == "other@2" and len(state["clusters"]) == 1
    assert state["clusters"][people_state.cluster_id("u", "a9", 0)]["count"] == 1


def test_the_least_recently_seen_candidates_go_first_when_a_user_has_too_many() -> None:
    store = Store()
    search = PeopleSearch(store, PeoplePolicy(min_faces=2, max_clusters=3))
    batch = [("a0", photo_of(1, 0)), ("a1", photo_of(1, 1))]  # a person
    batch += [(f"s{i}", person(10 + i)) for i in range(4)]  # four strangers
    found = search.search(
        [PhotoFaces("u", p, MODEL, [Face(0, list(map(float, v)), BOX)]) for p, v in batch]
    )
    kept = set(found.states["u"]["clusters"])
    assert kept == {people_state.cluster_id("u", p, 0) for p in ["a0", "s2", "s3"]}
    dropped = [c[2] for c in found.changes if c[0] == "drop"]
    assert dropped == [people_state.cluster_id("u", "s0", 0), people_state.cluster_id("u", "s1", 0)]


def test_faces_without_embedding_keep_their_place() -> None:
    fields = {
        "faces": [
            {"box": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}, "embedding": None},
            {"box": {"x1": 2, "y1": 3, "x2": 4, "y2": 5}, "embedding": [0.5] * 128},
        ]
    }
    found_faces = faces.faces_of(fields)
    assert found_faces[0] is None and found_faces[1] is not None
    assert found_faces[1].index == 1 and list(found_faces[1].box) == [2, 3, 4, 5]
    found = PeopleSearch(Store(), POLICY).search([PhotoFaces("u", "p", MODEL, found_faces)])
    assert found.assigned[0] is not None and found.assigned[0].clusters[0] is None
    assert found.assigned[0].clusters[1] == people_state.cluster_id("u", "p", 1)


def test_a_centroid_survives_packing_exactly() -> None:
    mean = people_state.stored(photo_of(3, 1))
    assert np.array_equal(people_state.unpack_mean(people_state.pack_mean(mean)), mean)


def test_a_face_writes_its_cluster_and_the_header_whatever_the_users_people() -> None:
    store = Store()
    search = PeopleSearch(store, PeoplePolicy(min_faces=2, max_clusters=1000))
    strangers = [(f"s{i}", person(100 + i)) for i in range(300)]
    run(store, [("a0", photo_of(1, 0)), *strangers])
    assert len(store.rows) == 302  # the header, 301 clusters
    found = search.search(
        [PhotoFaces("u", "a1", MODEL, [Face(0, list(map(float, photo_of(1, 1))), BOX)])]
    )
    assert set(found.rows) == {
        user_prefix("u"),
        entry_key("u", "c", people_state.cluster_id("u", "a0", 0)),
    }
    state = store.people_of("u")
    assert state is not None and list(state["clusters"])[:2] == [
        people_state.cluster_id("u", "a0", 0),
        people_state.cluster_id("u", "s0", 0),
    ]  # in the order they started, as the batch that made them held them
