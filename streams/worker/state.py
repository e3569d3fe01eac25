"""What the worker remembers, as plain functions over JSON-able table values.

``photo_state[keys.photo_key(user_id, photo_id)]``: the outcome of the photo's last processing
(its user, status, event id, model versions, a summary); one user's photos are one prefix, which
is how an erasure finds them all.
``user_stats[user_id]``: counts over the user's photos, kept equal to the sum of their
summaries: a photo re-enriched by a new model version replaces its old summary instead of being
counted twice. Keeping these rules here, away from Faust, keeps them testable.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from streams.contracts.events import iso_utc
from streams.pipeline.bestshot import Shot
from streams.pipeline.outputs import Attempt

PhotoState = dict[str, Any]
UserStats = dict[str, Any]


def now_iso() -> str:
    """The current UTC time, ISO-8601."""
    return iso_utc(datetime.now(UTC))


def already_done(
    state: PhotoState | None, event_id: str, versions: dict[str, str], attempt_key: str = ""
) -> bool:
    """True when processing this upload again would change nothing.

    An enriched photo is done while the models are the same, whatever the event (a replayed or
    re-published upload); a failed one only for a redelivery of the same attempt (the same
    upload event written by the same replay, ``attempt_key``): a re-driven dead letter, which
    keeps its upload's event id, is a new attempt.
    """
    if state is None:
        return False
    if state["status"] == "enriched":
        return bool(state["model_versions"] == versions)
    return bool(state["event_id"] == event_id and _key(state) == attempt_key)


def attempt_number(
    state: PhotoState | None, event_id: str, attempt_key: str, versions: dict[str, str]
) -> int:
    """Which attempt at the photo an upload is: the recorded one for a redelivery of it (the
    same upload from the same writer, ``attempt_key``, not yet outdated by new model
    ``versions``), one more for any other (1 for a photo never seen)."""
    if state is None:
        return 1
    recorded = int(state.get("attempt", 1))
    outdated = state["status"] == "enriched" and state["model_versions"] != versions
    same = state["event_id"] == event_id and _key(state) == attempt_key and not outdated
    return recorded if same else recorded + 1


def _key(state: PhotoState) -> str:
    return str(state.get("attempt_key", ""))  # "" in states written before attempts


def summarise(record: dict[str, Any], byte_size: int) -> dict[str, Any]:
    """The part of a PhotoEnriched that the stats and GET /photos need."""
    labels = record.get("labels") or []
    moderation = record.get("moderation")
    duplicate = record.get("duplicate_of")
    best_shot = record.get("best_shot")
    shot = Shot.of(record)
    return {
        "labels": [label["name"] for label in labels[:3]],
        "tags": [tag["name"] for tag in record.get("tags") or []],
        "faces": len(record.get("faces") or []),
        "flagged": bool(moderation and moderation["flagged"]),
        "text": " | ".join(line["text"] for line in record.get("ocr") or [])[:200],
        "duplicate_of": duplicate["photo_id"] if duplicate else None,
        "group": best_shot["group_id"] if best_shot else None,  # streams.pipeline.bestshot
        "shot": shot.to_json() if shot is not None else None,
        "bytes": byte_size,
        "size": [record["width"], record["height"]],
    }


def enriched_state(
    event_id: str,
    versions: dict[str, str],
    summary: dict[str, Any],
    *,
    user_id: str,
    attempt: Attempt = Attempt(),
) -> PhotoState:
    """photo_state value after a successful enrichment (``event_id``: the upload's)."""
    return {
        "user_id": user_id,
        "status": "enriched",
        "event_id": event_id,
        "attempt": attempt.number,
        "attempt_key": attempt.key,
        "model_versions": dict(versions),
        "summary": summary,
        "updated_at": now_iso(),
    }


def failed_state(
    event_id: str,
    reason: str,
    stage: str,
    detail: str,
    *,
    user_id: str,
    attempt: Attempt = Attempt(),
) -> PhotoState:
    """photo_state value after a dead letter (``event_id``: the upload's)."""
    return {
        "user_id": user_id,
        "status": "failed",
        "event_id": event_id,
        "attempt": attempt.number,
        "attempt_key": attempt.key,
        "model_versions": {},
        "reason": reason,
        "stage": stage,
        "detail": detail[:500],
        "updated_at": now_iso(),
    }


def empty_stats() -> UserStats:
    """A user with no photos yet."""
    return {
        "photos": 0,
        "failed": 0,
        "bytes": 0,
        "faces": 0,
        "flagged": 0,
        "duplicates": 0,
        "labels": {},
        "tags": {},
    }


def update_stats(stats: UserStats | None, old: PhotoState | None, new: PhotoState) -> UserStats:
    """``stats`` with ``old``'s contribution replaced by ``new``'s."""
    result = {**empty_stats(), **(stats or {})}
    if old is not None:
        _apply(result, old, -1)
    _apply(result, new, +1)
    return result


def without(stats: UserStats | None, old: PhotoState) -> UserStats | None:
    """``stats`` with ``old``'s contribution taken out (a deleted photo); None once the user has
    no photo and no dead letter counted."""
    result = {**empty_stats(), **(stats or {})}
    _apply(result, old, -1)
    return result if result["photos"] > 0 or result["failed"] > 0 else None


def _apply(stats: UserStats, state: PhotoState, sign: int) -> None:
    if state["status"] == "failed":
        stats["failed"] += sign
        return
    summary = state["summary"]
    stats["photos"] += sign
    stats["bytes"] += sign * summary["bytes"]
    stats["faces"] += sign * summary["faces"]
    stats["flagged"] += sign * int(summary["flagged"])
    stats["duplicates"] += sign * int(summary["duplicate_of"] is not None)
    labels: Counter[str] = Counter(stats["labels"])
    if summary["labels"]:
        labels[summary["labels"][0]] += sign  # the histogram counts each photo's top label
    stats["labels"] = {name: count for name, count in labels.items() if count > 0}
    tags: Counter[str] = Counter(stats["tags"])
    tags.update({name: sign for name in tags_of(state)})  # every tag of the photo, once
    stats["tags"] = {name: count for name, count in tags.items() if count > 0}


# How many photo ids GET /users/{u}/tags/{t}/photos and .../people/{p}/photos list: the newest.
# The lists themselves are whole (one table key per photo: streams.pipeline.keys.entry_key).
PHOTOS_LISTED = 1000


def tags_of(state: PhotoState | None) -> list[str]:
    """The tags a photo counts under: an enriched photo's (none before tags existed)."""
    if state is None or state["status"] != "enriched":
        return []
    return list(state["summary"].get("tags") or [])


def tag_changes(old: PhotoState | None, new: PhotoState) -> tuple[list[str], list[str]]:
    """(tags the photo lost, tags it gained) from ``old`` to ``new``."""
    before, after = tags_of(old), tags_of(new)
    return [t for t in before if t not in after], [t for t in after if t not in before]
