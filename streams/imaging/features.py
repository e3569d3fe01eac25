"""Model-free enrichments of a decoded photo: EXIF facts, quality, colours, perceptual hash.

Each comes with the provenance that PhotoEnriched.produced_by records for it.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, NamedTuple

from streams.imaging.decode import DecodedPhoto
from streams.imaging.exif import ExifFacts
from streams.imaging.phash import dct_block, dihedral_hashes, phash_hex
from streams.imaging.quality import (
    WORKING_LONG_SIDE,
    dominant_colors,
    measure_quality,
    working_image,
)

# Bump a version when its algorithm changes: consumers see which one made each value.
PRODUCERS: dict[str, dict[str, str]] = {
    "exif": {"name": "exifread", "version": version("exifread")},
    "quality": {"name": "darkroom-quality", "version": "1"},
    "dominant_colors": {"name": "darkroom-kmeans-colors", "version": "1"},
    "phash": {"name": "darkroom-dct-phash", "version": "1"},
}


def exif_record(facts: ExifFacts) -> dict[str, Any]:
    """ExifFacts as the PhotoEnriched ``exif`` record."""
    gps = None
    if facts.latitude is not None and facts.longitude is not None:
        gps = {
            "latitude": facts.latitude,
            "longitude": facts.longitude,
            "altitude_m": facts.altitude,
        }
    return {
        "taken_at": facts.taken_at,
        "camera_make": facts.make,
        "camera_model": facts.model,
        "lens_model": facts.lens_model,
        "orientation": facts.orientation,
        "gps": gps,
    }


class Features(NamedTuple):
    """The model-free enrichments of one photo, and what the duplicate search needs of it."""

    fields: dict[str, Any]
    produced_by: dict[str, dict[str, str]]
    hashes: list[int]  # the perceptual hashes of its 8 rotations and mirror images, [0] itself
    block: list[float]  # the 8x8 DCT block they come from, row by row (phash.block_correlation)


def extract_features(photo: DecodedPhoto, blur_threshold: float) -> Features:
    """Every model-free enrichment of ``photo``; the hashes and block are not event fields."""
    facts = photo.exif  # parsed once, by the decoder
    # one shrink for all three measures (each would otherwise shrink the photo itself); small
    # photos are used as they are
    image = photo.image
    if max(image.shape[:2]) > WORKING_LONG_SIDE:
        image = working_image(image)
    block = dct_block(image)
    variants = dihedral_hashes(block)
    quality = measure_quality(image, blur_threshold)
    fields: dict[str, Any] = {
        "exif": exif_record(facts) if facts is not None else None,
        "quality": {
            "blur_variance": quality.blur_variance,
            "is_blurry": quality.is_blurry,
            "brightness": quality.brightness,
            "contrast": quality.contrast,
            "underexposed_fraction": quality.underexposed_fraction,
            "overexposed_fraction": quality.overexposed_fraction,
        },
        "dominant_colors": [
            {"hex": hex_, "fraction": share} for hex_, share in dominant_colors(image)
        ],
        "phash": phash_hex(variants[0]),
    }
    produced_by = {name: PRODUCERS[name] for name, value in fields.items() if value is not None}
    return Features(fields, produced_by, variants, block.ravel().tolist())
