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

Groups of two photos or more are kept in a table one row per copy (``rows_of``: keyed
``keys.entry_key(user, group id, photo id)``, valued [join number, shot]), so a copy that joins
writes one small row whatever the group's size; a photo in no group is the best of its group of
one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from streams.pipeline.dedup import Findings, Searched
from streams.pipeline.keys import entry_key, photo_key, row_changes, split_entry, split_key

# A face is in focus when its sharpness (streams.imaging.quality.face_sharpness) reaches this.
# Measured on the six sample portraits (benchmarks/bestshot.py): their faces 0.13-0.62, the same
# faces alone blurred 0.007-0.076.
FACE_IN_FOCUS = 0.1
WEIGHTS = {"sharpness": 0.35, "exposure": 0.25, "resolution": 0.2, "faces": 0.2}
TIE = 0.01  # score a later copy must gain over the best to replace it

# {"members": [[photo_id, Shot as JSON or None, upload time or None], ...]}: the first photo
# first (its time None: its place is first), then its copies by upload time, then photo id;
# a shot None: a first photo enriched before shots were kept, unranked
Group = dict[str, Any]


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
    """A group's ranked members, the first photo first, then the copies oldest first."""
    return [(m[0], Shot.from_json(m[1])) for m in group["members"] if m[1] is not None]


def size(group: Group) -> int:
    """How many photos ``group`` holds (an unranked first photo too)."""
    return len(group["members"])


def _ordered(first: list[Any], copies: Iterable[list[Any]]) -> Group:
    return {"members": [first, *sorted(copies, key=lambda m: (m[2], m[0]))]}


def with_member(
    group: Group | None,
    first: str,
    first_shot: Shot | None,
    photo: str,
    shot: Shot,
    uploaded_at: str,
) -> Group:
    """``group`` (None: a new one, of ``first`` and ``photo``) with ``photo``, uploaded at
    ``uploaded_at`` (ISO), in it; a photo there already (re-enriched) is replaced."""
    if group is None:
        group = {"members": [[first, None if first_shot is None else first_shot.to_json(), None]]}
    head, *copies = group["members"]
    copies = [m for m in copies if m[0] != photo]
    if head[0] == photo:
        head = [photo, shot.to_json(), None]
    else:
        copies.append([photo, shot.to_json(), uploaded_at])
    return _ordered(head, copies)


def without_member(group: Group, photo: str) -> Group | None:
    """``group`` without ``photo``, a copy; None once fewer than two photos are left."""
    members = [m for m in group["members"] if m[0] != photo]
    return {"members": members} if len(members) >= 2 else None


def reformed(group: Group) -> tuple[str | None, Group | None]:
    """``group`` without its first photo: (its oldest copy, the first now, or None when there
    is none; the group around it, or None when it is alone)."""
    copies = group["members"][1:]
    if not copies:
        return None, None
    heir = [copies[0][0], copies[0][1], None]
    return heir[0], _ordered(heir, copies[1:]) if len(copies) >= 2 else None


def rows_of(user: str, group_id: str, group: Group | None) -> dict[str, Any]:
    """The table rows of ``group`` (none for None): entry key -> [upload time, shot]."""
    if group is None:
        return {}
    return {entry_key(user, group_id, m[0]): [m[2], m[1]] for m in group["members"]}


def changed_rows(
    user: str, group_id: str, before: Group | None, after: Group | None
) -> dict[str, Any]:
    """The rows to write for ``group_id`` going from ``before`` to ``after`` (None: delete)."""
    return row_changes(rows_of(user, group_id, before), rows_of(user, group_id, after))


def groups_of(rows: Iterable[tuple[str, Any]]) -> dict[str, Group]:
    """Every group of a user's rows, (entry key, value), by group id (groups of fewer than two
    left out)."""
    members: dict[str, list[tuple[str, Any]]] = {}
    for key, row in rows:
        _, group_id, photo = split_entry(key)
        members.setdefault(group_id, []).append((photo, row))
    found = {group_id: from_rows(group_id, listed) for group_id, listed in members.items()}
    return {group_id: group for group_id, group in found.items() if group is not None}


def from_rows(group_id: str, rows: Iterable[tuple[str, Any]]) -> Group | None:
    """The group ``group_id`` of its rows, (photo id, [upload time, shot]); None for fewer than
    two."""
    members = [[photo, value[1], value[0]] for photo, value in rows]
    if len(members) < 2:
        return None
    firsts = [m for m in members if m[0] == group_id] or [min(members, key=lambda m: m[0])]
    return _ordered(firsts[0], (m for m in members if m is not firsts[0]))


def describe(group_id: str, group: Group, limit: int = 100) -> dict[str, Any]:
    """A group as GET /users/{u}/duplicates lists it: the best copy first and why it beats the
    next; then the others, best first, each with why the best is kept before it; at most
    ``limit`` photos listed (``count`` says how many it holds)."""
    members = members_of(group)
    best = best_of(members)
    ranked = [
        members[best],
        *sorted((m for i, m in enumerate(members) if i != best), key=lambda m: -m[1].score),
    ]
    return {
        "group_id": group_id,
        "count": size(group),
        "best": ranked[0][0],
        "reason": reason(ranked[0][1], ranked[1][1]) if len(ranked) > 1 else None,
        "photos": [
            {
                "photo_id": photo,
                "score": round(shot.score, 4),
                "behind_best": reason(ranked[0][1], shot) if i else None,
                **shot.to_json(),
            }
            for i, (photo, shot) in enumerate(ranked[:limit])
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
        """The group at ``keys.photo_key(user, group id)`` (``from_rows``), or None."""
        ...


@dataclass
class ShotFindings:
    """A batch's ranking: per photo its BestShot record (None: not ranked); every group that
    changed, as it is after the batch (None: gone), and the rows that changed (``rows_of``;
    None: to delete), which are all a worker writes."""

    best_shot: list[dict[str, Any] | None] = field(default_factory=list)
    groups: dict[str, Group | None] = field(default_factory=dict)
    rows: dict[str, Any] = field(default_factory=dict)

    def change(self, key: str, before: Group | None, after: Group | None) -> None:
        """The group at ``key`` (``keys.photo_key(user, group id)``) goes from ``before`` to
        ``after``."""
        self.groups[key] = after
        self.rows.update(changed_rows(*split_key(key), before, after))


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

        for user, photo, uploaded_at, result in photos:
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
                    found.change(old_key, old, without_member(old, photo))
            key = photo_key(user, group_id)
            value = group(key)
            if value is not None or group_id != photo:
                first_shot = shots.get(group_id) or self.store.shot_of(user, group_id)
                joined = with_member(value, group_id, first_shot, photo, shot, uploaded_at)
                found.change(key, value, joined)
                value = joined
            members = members_of(value) if value is not None else [(photo, shot)]
            best = best_of(members)
            found.best_shot.append(
                {
                    "group_id": group_id,
                    "best": members[best][0] == photo,
                    "best_photo_id": members[best][0],
                    "score": shot.score,
                    "group_size": size(value) if value is not None else 1,
                }
            )
        return found
