"""What a replay leaves out: uploads of a photo deleted after them, every upload of an erased
user (streams/replay/forgotten.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.contracts.events import new_photo_deleted, new_upload, new_user_erased, photo_removed
from streams.replay.forgotten import Forgotten

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def upload(user: str, photo: str, at: datetime) -> dict[str, object]:
    return new_upload(
        photo_id=photo,
        user_id=user,
        content_type="image/jpeg",
        byte_size=1,
        blob=b"x",
        uploaded_at=at,
    )


def test_a_deleted_photos_earlier_uploads_and_an_erased_users_uploads_are_left_out() -> None:
    forgotten = Forgotten()
    deletion = new_photo_deleted(user_id="u1", photo_id="p1", reason="r", requested_at=T0)
    forgotten.add(photo_removed(deletion, worker="w"))
    forgotten.add(new_user_erased(user_id="u2", reason="r", requested_at=T0))  # a request too
    assert forgotten.covers(upload("u1", "p1", T0 - timedelta(hours=1)))
    assert forgotten.covers(upload("u1", "p1", T0))
    assert not forgotten.covers(upload("u1", "p1", T0 + timedelta(days=1)))  # uploaded again
    assert not forgotten.covers(upload("u1", "p2", T0))
    assert not forgotten.covers(upload("u3", "p1", T0))  # another user's photo of that id
    assert forgotten.covers(upload("u2", "any", T0 + timedelta(days=100)))
    assert len(forgotten) == 2
