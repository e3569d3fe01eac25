"""`darkroom models verify`: load each model and run its golden checks on real sample photos.

It lives beside the engine, not in streams.models, because it runs the Enricher: the model
layer sits below the engine and must not import it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from streams.config import EngineSettings
from streams.engine.contract import mismatch
from streams.engine.enricher import Enricher, PhotoInput
from streams.engine.results import Enriched
from streams.engine.runners import companions
from streams.inference import agreement
from streams.models.manifest import Golden, ModelManifest
from streams.models.repository import ModelRepository
from streams.samples import encode_jpeg, load_photo

Fields = dict[str, Any]

# Tasks that only make sense together with other models, from the runners' declarations.
_COMPANIONS = companions()
CONTRACT_PHOTO = "astronaut"  # a face, labels, an embedding: most fields have a value


@dataclass
class Check:
    """One golden expectation and what was seen."""

    description: str
    passed: bool
    seen: str


@dataclass
class VerifyResult:
    """All checks of one model."""

    manifest: ModelManifest
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Every check passed."""
        return all(check.passed for check in self.checks)


def verify_model(
    manifest: ModelManifest, repository: ModelRepository, settings: EngineSettings
) -> VerifyResult:
    """Run ``manifest``'s golden checks (with its companion models, e.g. OCR det + rec)."""
    started = time.monotonic()
    production = repository
    repository = repository.as_production(manifest.name)  # a variant runs where it would serve
    enricher = _enricher(manifest.name, repository, settings)
    result = VerifyResult(manifest)
    if manifest.variant_of is not None:
        result.checks.append(_contract(manifest, enricher, production, settings))
    try:
        result.checks.append(
            Check("loads and runs", True, f"on {enricher.runners[0].session.provider}")
        )
        for golden in manifest.golden:
            photos = [golden.photo] + ([golden.same_face_as] if golden.same_face_as else [])
            outcomes = enricher.enrich(
                [PhotoInput(photo, encode_jpeg(load_photo(photo))) for photo in photos]
            )
            failed = [o for o in outcomes if not isinstance(o, Enriched)]
            for photo, outcome in zip(photos, outcomes, strict=True):
                if not isinstance(outcome, Enriched):
                    result.checks.append(Check(f"{photo}: enriched", False, outcome.detail))
            if failed:
                continue
            fields = [o.fields for o in outcomes if isinstance(o, Enriched)]
            result.checks.extend(_checks(golden, fields[0]))
            if golden.same_face_as is not None:
                result.checks.append(_same_face(golden, golden.same_face_as, *fields))
    finally:
        enricher.close()
    result.seconds = time.monotonic() - started
    return result


def _enricher(name: str, repository: ModelRepository, settings: EngineSettings) -> Enricher:
    """An engine of model ``name`` and its companions (an OCR detector reads with a
    recogniser), without variants."""
    names = [name]
    task = repository.get(name).task
    for companion in _COMPANIONS.get(task, ()):
        names += [m.name for m in repository.production() if m.task is companion][:1]
    only = {"models": ",".join(names), "variants": "none"}
    return Enricher(settings.model_copy(update=only), repository)


def _contract(
    manifest: ModelManifest,
    variant: Enricher,
    repository: ModelRepository,
    settings: EngineSettings,
) -> Check:
    """A variant's fields read like its production model's on a sample photo (widths, types,
    keys: streams/engine/contract.py); a variant that fails this is never served, so a canary
    that fails it serves nobody (a new embedding width is a new model, with an index of its
    own)."""
    description = f"outputs read like {manifest.variant_of}'s (what its consumers read)"
    photo = [PhotoInput(CONTRACT_PHOTO, encode_jpeg(load_photo(CONTRACT_PHOTO)))]
    assert manifest.variant_of is not None
    production = _enricher(manifest.variant_of, repository, settings)
    try:
        (ours,), (theirs,) = production.enrich(photo), variant.enrich(photo)
    finally:
        production.close()
    if not (isinstance(ours, Enriched) and isinstance(theirs, Enriched)):
        return Check(description, False, "the sample photo was not enriched")
    problem = mismatch(ours.fields, theirs.fields)
    return Check(description, problem is None, problem or f"as {manifest.variant_of}'s")


def _same_face(golden: Golden, other: str, fields: Fields, other_fields: Fields) -> Check:
    """The first face of each photo, embedded within ``max_face_distance`` of each other."""
    description = f"{golden.photo}: same face as {other} (<= {golden.max_face_distance})"
    vectors = [((f.get("faces") or [{}])[0]).get("embedding") for f in (fields, other_fields)]
    if not all(vectors):
        return Check(description, False, "a photo has no face with an embedding")
    distance = agreement.euclidean(vectors[0], vectors[1])
    return Check(description, distance <= golden.max_face_distance, f"distance {distance:.3f}")


def _checks(golden: Golden, fields: Fields) -> list[Check]:
    checks = []
    if golden.label is not None:
        labels = fields.get("labels") or []
        names = [label["name"] for label in labels]
        seen = ", ".join(f"{lb['name']} {lb['score']:.2f}" for lb in labels[:3]) or "no labels"
        checks.append(
            Check(
                f"{golden.photo}: label {golden.label!r}",
                golden.label.lower() in (n.lower() for n in names),
                seen,
            )
        )
    if golden.faces is not None:
        faces = fields.get("faces") or []
        seen = ", ".join(f"{f['score']:.2f}" for f in faces) or "none"
        checks.append(
            Check(
                f"{golden.photo}: {golden.faces} face(s)",
                len(faces) == golden.faces,
                f"{len(faces)} ({seen})",
            )
        )
    if golden.tags is not None:
        tags = [t["name"] for t in fields.get("tags") or []]
        checks.append(
            Check(
                f"{golden.photo}: tags {', '.join(golden.tags)}",
                set(golden.tags) <= set(tags),
                ", ".join(f"{t['name']} {t['score']:.2f}" for t in fields.get("tags") or [])
                or "no tags",
            )
        )
    if golden.text is not None:
        text = " | ".join(line["text"] for line in fields.get("ocr") or [])
        checks.append(
            Check(
                f"{golden.photo}: reads {golden.text!r}",
                golden.text.lower() in text.lower(),
                text or "no text",
            )
        )
    for name, limit in (golden.max_score or {}).items():
        score = ((fields.get("moderation") or {}).get("scores") or {}).get(name)
        checks.append(
            Check(
                f"{golden.photo}: {name} <= {limit}",
                score is not None and score <= limit,
                f"{score}",
            )
        )
    return checks
