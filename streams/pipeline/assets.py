"""The batch's thumbnails into the photos' stores, and a forgotten photo's (or user's) out.

Each enriched photo's event says what was stored (``assets``: URI, size, bytes, SHA-256 of each)
or why not (``assets.error``): a store that refuses after its tries costs the photo its
thumbnails, never its other fields. Forgetting is the opposite step: a PhotoDeleted removes the
photo's assets, a UserErased every asset of the user, before the PhotoRemoved goes out.
"""

from __future__ import annotations

from typing import Any

from streams.blobs.assets import AssetStore, AssetWrite
from streams.blobs.integrity import BlobStoreError
from streams.imaging.thumbnails import CONTENT_TYPES, Thumbnail
from streams.logs import get_logger
from streams.pipeline.photo import Photo

log = get_logger("darkroom.pipeline")


def store_thumbnails(store: AssetStore, photos: list[Photo]) -> None:
    """Write every enriched photo's thumbnails at once; fill each one's ``assets``."""
    writes: list[tuple[Photo, Thumbnail, AssetWrite]] = []
    for photo in photos:
        enriched, upload = photo.enriched, photo.upload
        if enriched is None or upload is None:
            continue
        if enriched.thumbnail_error is not None:
            photo.assets = assets_record([], [f"not made: {enriched.thumbnail_error}"], None)
            continue
        for thumbnail in enriched.thumbnails:
            write = AssetWrite(
                upload["blob"],
                str(upload["user_id"]),
                str(upload["photo_id"]),
                thumbnail.name,
                thumbnail.data,
                CONTENT_TYPES[thumbnail.spec.format],
            )
            writes.append((photo, thumbnail, write))
    results = store.put_many([write for _, _, write in writes])
    stored: dict[int, list[dict[str, Any]]] = {}
    errors: dict[int, list[str]] = {}
    for (photo, thumbnail, write), result in zip(writes, results, strict=True):
        if isinstance(result, Exception):
            log.warning("thumbnail not stored", photo_id=write.photo_id, error=str(result))
            errors.setdefault(id(photo), []).append(str(result))
        else:
            stored.setdefault(id(photo), []).append(asset_item(thumbnail, result))
    for photo in {id(p): p for p, _, _ in writes}.values():
        assert photo.enriched is not None
        converted = photo.enriched.thumbnails[0].srgb_from
        photo.assets = assets_record(
            stored.get(id(photo), []), errors.get(id(photo), []), converted
        )
        photo.enriched.thumbnails = []  # stored: the bytes need not live until the batch ends


def asset_item(thumbnail: Thumbnail, uri: str) -> dict[str, Any]:
    """One stored thumbnail as a PhotoEnriched ``assets.items`` entry."""
    return {
        "name": thumbnail.name,
        "kind": "thumbnail",
        "size": thumbnail.spec.size,
        "width": thumbnail.width,
        "height": thumbnail.height,
        "content_type": CONTENT_TYPES[thumbnail.spec.format],
        "uri": uri,
        "bytes": len(thumbnail.data),
        "sha256": thumbnail.sha256,
    }


def assets_record(
    items: list[dict[str, Any]], errors: list[str], srgb_from: str | None
) -> dict[str, Any]:
    """The PhotoEnriched ``assets`` record."""
    return {
        "items": items,
        "error": "; ".join(errors) if errors else None,
        "srgb_from": srgb_from,
    }


def forget_assets(store: AssetStore, photos: list[Photo]) -> None:
    """Each forget request's assets removed from every store they can be in. BlobStoreError
    (transient: the batch is tried again) when a store cannot be reached: a deletion is not
    answered until it is done."""
    for photo in photos:
        request = photo.request
        if request is None:
            continue
        user, photo_id = str(request["user_id"]), request.get("photo_id")
        try:
            removed = store.forget(user, str(photo_id) if photo_id is not None else None)
        except BlobStoreError:
            raise
        except Exception as exc:
            raise BlobStoreError(
                f"cannot remove the assets of {photo_id or 'every photo'} of a user: {exc}"
            ) from exc
        log.info("assets forgotten", photo_id=photo_id, objects=removed)
