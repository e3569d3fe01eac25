"""What was forgotten, as the outcome topic says: a replay never brings it back.

A worker refuses an upload of a deleted photo or an erased user while it remembers the request
(``worker.forget_remember_days``); a replay may copy or reprocess uploads older than that. So a
replay reads every PhotoRemoved on photos.enriched first, and leaves out each upload that one
of them forgot: a photo's uploads from before its deletion, every upload of an erased user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.config import Settings
from streams.contracts.codec import Codec
from streams.contracts.schemas import EventType
from streams.tail import scan


@dataclass
class Forgotten:
    """Deleted photos (with when the deletion was asked) and erased users."""

    photos: dict[tuple[str, str], datetime] = field(default_factory=dict)
    users: dict[str, datetime] = field(default_factory=dict)

    def add(self, removed: dict[str, Any]) -> None:
        """Remember a PhotoRemoved (or the request it answers)."""
        user, photo, at = removed["user_id"], removed.get("photo_id"), removed["requested_at"]
        if photo is None:
            self.users[user] = max(at, self.users.get(user, at))
        else:
            self.photos[(user, photo)] = max(at, self.photos.get((user, photo), at))

    def covers(self, upload: dict[str, Any]) -> bool:
        """Whether ``upload`` (a PhotoUploaded record) is of something forgotten: its user was
        erased, or its photo deleted after it was uploaded."""
        if upload["user_id"] in self.users:
            return True
        deleted = self.photos.get((upload["user_id"], upload["photo_id"]))
        return deleted is not None and upload["uploaded_at"] <= deleted

    def __len__(self) -> int:
        return len(self.photos) + len(self.users)


def read_forgotten(settings: Settings, codec: Codec) -> Forgotten:
    """Every PhotoRemoved on the enriched topic, read to its end."""
    found = Forgotten()
    for message in scan(settings, codec, settings.topics.enriched):
        event = message.event
        if event is not None and event.event_type is EventType.PHOTO_REMOVED:
            found.add(event.record)
    return found
