"""Best shot: which copy of a near-duplicate group to keep, and why.

A group is a photo and every later photo found to nearly duplicate it (streams/pipeline/dedup.py);
its id is that first photo's. Each copy is scored from what the engine measured, with no model:
sharpness (the Laplacian's variance at a fixed working size, so a large and a small copy compare
on detail, not size, over the luma's variance, so a brightened copy is not a sharper one),
exposure (blown highlights count three times, crushed shadows half: a black studio background
is no fault, a white face is; brightness far from mid-grey), resolution, and faces in focus.
The best copy is the highest score; a later copy must beat it by ``TIE`` to take over, so the
choice does not flip between copies that differ by noise (a copy turned 90 degrees measures
almost the same).

Groups of two photos or more are kept in a table (a ``Group`` per group, keyed
``keys.photo_key(user, group id)``); a photo in no group is the best of its group of one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from streams.pipeline.dedup import Findings, Searched
from streams.pipeline.keys import photo_key

# A face is in focus when its sharpness (streams.imaging.quality.face_sharpness) reaches this.
# Measured on the six sample portraits (benchmarks/bestshot.py): their faces 0.13-0.62, the same
# faces alone blurred 0.007-0.076.
FACE_IN_FOCUS = 0.1
WEIGHTS = {"sharpness": 0.35, "exposure": 0.25, "resolution": 0.2, "faces": 0.2}
TIE = 0.01  # score a later copy must gain over the best to replace it
MAX_MEMBERS = 100  # copies a group value lists (the first photo always); its count stays exact

Group = dict[str, Any]  # {"count": int, "members": [[photo_id, Shot as JSON], ...], oldest first}


@dataclass(frozen=True)
class Shot:
    """What the ranking reads of one copy."""

    sharpness: float  # quality.blur_variance
    contrast: float  # quality.contrast: the luma's standard deviation, 0..1
    brightness: float  # mean luma, 0..1
    under: float  # share of pixels underexposed
    over: float  # share of pixels overexposed
    megapixels: float
    faces: int
    faces_in_focus: int

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> Shot | None:
        """The shot of an enriched photo's fields; None when its quality was not measured."""
        quality = fields.get("quality")
        if not quality:
            return None
        faces = fields.get("faces") or []
        return cls(
            sharpness=float(quality["blur_variance"]),
            contrast=float(quality["contrast"]),
            brightness=float(quality["brightness"]),
            under=float(quality["underexposed_fraction"]),
            over=float(quality["overexposed_fraction"]),
            megapixels=fields["width"] * fields["height"] / 1e6,
            faces=len(faces),
            faces_in_focus=sum(1 for f in faces if (f.get("sharpness") or 0.0) >= FACE_IN_FOCUS),
        )

    def parts(self) -> dict[str, float]:
        """Each measure on 0..1, higher is better."""
        off_grey = max(0.0, abs(self.brightness - 0.5) - 0.2)  # 0.3..0.7 is no fault
        pixels = max(self.megapixels * 1e6, 1.0)
        return {
            # sharp photos measure 0.07-0.5, blurred ones 0.001-0.01 (benchmarks/bestshot.py)
            "sharpness": _unit(math.log10(1.0 + 1000.0 * self.detail) / 2.7),
            "exposure": _unit(1.0 - 2.0 * (3.0 * self.over + 0.5 * self.under) - 2.0 * off_grey),
            # 0 at 65 thousand pixels, 1 at 16.8 MP
            "resolution": _unit((math.log2(pixels) - 16.0) / 8.0),
            "faces": 1.0 - 0.5**self.faces_in_focus,
        }

    @property
    def detail(self) -> float:
        """The Laplacian's variance over the luma's (both on 0..255): sharpness whatever the
        exposure, as a brighter copy of a photo has stronger edges, not more of them."""
        spread = (255.0 * self.contrast) ** 2
        return self.sharpness / spread if spread > 1e-6 else 0.0

    @property
    def score(self) -> float:
        """0..1: the weighted parts."""
        return sum(WEIGHTS[name] * value for name, value in self.parts().items())

    def to_json(self) -> dict[str, Any]:
        """As a table value holds it."""
        return asdict(self)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Shot:
        """The inverse of ``to_json``."""
        return cls(**value)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))


def best_of(members: Sequence[tuple[str, Shot]]) -> int:
    """The index of the best copy among ``members`` (oldest first)."""
    best = 0
    for i, (_, shot) in enumerate(members):
        if shot.score > members[best][1].score + TIE:
            best = i
    return best


def reason(best: Shot, other: Shot) -> str:
    """Why ``best`` is kept before ``other``: the measure whose weighted difference is largest,
    or, for scores within TIE, that it came first."""
    if best.score - other.score <= TIE:
        return f"as good (scores within {TIE}), and earlier"
    ours, theirs = best.parts(), other.parts()
    name = max(WEIGHTS, key=lambda n: WEIGHTS[n] * (ours[n] - theirs[n]))
    if name == "sharpness":
        return f"sharper (detail {best.detail:.3f} vs {other.detail:.3f})"
    if name == "exposure":
        return (
            f"better exposed (brightness {best.brightness:.2f}, {best.over:.0%} blown, "
            f"{best.under:.0%} black vs {other.brightness:.2f}, {other.over:.0%}, "
            f"{other.under:.0%})"
        )
    if name == "resolution":
        return f"more pixels ({best.megapixels:.3g} MP vs {other.megapixels:.3g} MP)"
    return f"more faces in focus ({best.faces_in_focus} vs {other.faces_in_focus})"


def members_of(group: Group) -> list[tuple[str, Shot]]:
    """A group value's members, oldest first."""
    return [(photo_id, Shot.from_json(shot)) for photo_id, shot in group["members"]]


def with_member(
    group: Group | None, first: str, first_shot: Shot | None, photo: str, shot: Shot
) -> Group:
    """``group`` (None: a new one, of ``first`` and ``photo``) with ``photo`` in it (replaced in
    place when it is there already, as a re-enriched photo is), at most MAX_MEMBERS kept. A
    first photo without a shot (enriched before shots were kept) counts, unranked."""
    if group is None:
        members = [[first, first_shot.to_json()]] if first_shot is not None else []
        group = {"count": 1, "members": members}
    members = [list(m) for m in group["members"]]
    count = group["count"]
    for member in members:
        if member[0] == photo:
            member[1] = shot.to_json()
            break
    else:
        members.append([photo, shot.to_json()])
        count += 1
    if len(members) > MAX_MEMBERS:  # drop the worst copy that is neither the first nor new
        ranked = members_of({"members": members[1:-1]})
        worst = min(range(len(ranked)), key=lambda i: ranked[i][1].score)
        del members[1 + worst]
    return {"count": count, "members": members}


def without_member(group: Group, photo: str) -> Group | None:
    """``group`` without ``photo`` (a copy re-enriched into another group); None once fewer
    than two photos are left."""
    members = [m for m in group["members"] if m[0] != photo]
    count = group["count"] - (len(members) < len(group["members"]))
    return {"count": count, "members": members} if count >= 2 and members else None


def describe(group_id: str, group: Group) -> dict[str, Any]:
    """A group as GET /users/{u}/duplicates lists it: the best copy first and why it beats the
    next; then the others, best first, each with why the best is kept before it."""
    members = members_of(group)
    best = best_of(members)
    ranked = [
        members[best],
        *sorted((m for i, m in enumerate(members) if i != best), key=lambda m: -m[1].score),
    ]
    return {
        "group_id": group_id,
        "count": group["count"],
        "best": ranked[0][0],
        "reason": reason(ranked[0][1], ranked[1][1]) if len(ranked) > 1 else None,
        "photos": [
            {
                "photo_id": photo,
                "score": round(shot.score, 4),
                "behind_best": reason(ranked[0][1], shot) if i else None,
                **shot.to_json(),
            }
            for i, (photo, shot) in enumerate(ranked)
        ],
    }


class GroupStore(Protocol):
    """What earlier batches left: each photo's group and shot (photo_state), the groups."""

    def group_of(self, user_id: str, photo_id: str) -> str:
        """The id of the group ``photo_id`` is in; its own id when it is in none."""
        ...

    def shot_of(self, user_id: str, photo_id: str) -> Shot | None:
        """The shot recorded for ``photo_id`` of ``user_id``, or None."""
        ...

    def group(self, key: str) -> Group | None:
        """The group value at ``keys.photo_key(user, group id)``, or None."""
        ...


@dataclass
class ShotFindings:
    """A batch's ranking: per photo its BestShot record (None: not ranked), and every group
    value that changed (None: to delete)."""

    best_shot: list[dict[str, Any] | None] = field(default_factory=list)
    groups: dict[str, Group | None] = field(default_factory=dict)


class BestShots:
    """Puts each ranked photo of a batch in its group, in batch order."""

    def __init__(self, store: GroupStore) -> None:
        self.store = store

    def rank(self, photos: Sequence[Searched], searched: Findings) -> ShotFindings:
        """``photos``: as the search took them, each in the groups ``searched`` found."""
        found = ShotFindings()
        shots: dict[str, Shot] = {}  # this batch's, by photo id

        def group(key: str) -> Group | None:
            return found.groups[key] if key in found.groups else self.store.group(key)

        for user, photo, _uploaded_at, result in photos:
            group_id, before = searched.groups[photo], searched.groups_before[photo]
            shot = Shot.of(result.fields)
            if shot is None:
                found.best_shot.append(None)
                continue
            shots[photo] = shot
            if before != group_id:  # left its old group (or, new, is a copy: a no-op)
                old_key = photo_key(user, before)
                old = group(old_key)
                if old is not None:
                    found.groups[old_key] = without_member(old, photo)
            key = photo_key(user, group_id)
            value = group(key)
            if value is not None or group_id != photo:
                first_shot = shots.get(group_id) or self.store.shot_of(user, group_id)
                value = found.groups[key] = with_member(value, group_id, first_shot, photo, shot)
            members = members_of(value) if value is not None else [(photo, shot)]
            best = best_of(members)
            found.best_shot.append(
                {
                    "group_id": group_id,
                    "best": members[best][0] == photo,
                    "best_photo_id": members[best][0],
                    "score": shot.score,
                    "group_size": value["count"] if value is not None else 1,
                }
            )
        return found
