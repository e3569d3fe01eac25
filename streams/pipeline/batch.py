"""The one batch path below the worker and `replay --reprocess`: message bytes in, encoded
outputs out, nothing sent.

    pipeline = Pipeline.from_settings(settings, enricher)        # or Pipeline(...) in a test
    batch = pipeline.run([RawMessage(topic, partition, offset, key, value), ...])
    for photo in batch.photos:      # one per message, in order
        photo.topic                 # "enriched" | "failed" | None (skipped: already done)
        photo.value                 # the encoded PhotoEnriched / PhotoFailed, within the limit
        photo.shadows               # a ShadowResult per model variant that ran (photos.shadow)

Steps, each named (timings, logs and dead letters say where): decode_event -> refuse/skip ->
fetch_blob -> (decode threads) -> skip_again -> enrich (decode_image, features, infer:<model>,
variant:<name>) -> duplicates -> best_shot -> people -> build -> encode_output. ``run`` is
``start`` (up to handing the bytes to the decode threads) then ``finish``; the worker starts
batch n+1 while batch n finishes, so decoding overlaps inference as in the engine's own
``enrich_batches``.

A photo's first failure is one ``Failed`` from there to its dead letter; nothing that one photo
does (bytes, geometry, an unexpected exception) can fail another photo or the batch. Sending
and recording are the caller's: it must send every output and see it acknowledged before it
records or commits anything (see streams/worker/processor.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from streams.blobs import BlobStore
from streams.blobs.assets import AssetStore
from streams.config import Settings
from streams.contracts.codec import Codec, EncodeError, MalformedEventError, codec_from_settings
from streams.contracts.events import iso_utc
from streams.contracts.schemas import FORGET_REQUESTS, EventType, SchemaRepository
from streams.engine import Enricher, PhotoInput
from streams.errors import MalformedUploadError, OutputTooLargeError, PhotoError
from streams.logs import get_logger
from streams.pipeline import covers
from streams.pipeline.assets import forget_assets, store_thumbnails
from streams.pipeline.bestshot import BestShots, ShotFindings
from streams.pipeline.dedup import DuplicateSearch, Findings, Searched
from streams.pipeline.faces import Given, PhotoFaces, face_model, faces_of
from streams.pipeline.outputs import (
    Attempt,
    OutputBuilder,
    RawMessage,
    body_budget,
    encode_shadow,
    fit_dead_letter,
)
from streams.pipeline.people import PeopleFindings, PeopleSearch
from streams.pipeline.photo import (
    AttemptRule,
    Batch,
    Photo,
    RefusalRule,
    SkipRule,
    Started,
    first_attempt,
    never_refuse,
    never_skip,
)
from streams.pipeline.stages import name_stage, stage_of

log = get_logger("darkroom.pipeline")

StageTimer = Callable[[str, float], None]


class Pipeline:
    """decode -> skip -> fetch -> enrich -> duplicates -> best shot -> people -> build ->
    encode."""

    def __init__(
        self,
        *,
        codec: Codec,
        blobs: BlobStore,
        enricher: Enricher,
        outputs: OutputBuilder,
        max_message_bytes: int,
        skip: SkipRule = never_skip,
        attempts: AttemptRule = first_attempt,
        refuse: RefusalRule = never_refuse,
        duplicates: DuplicateSearch | None = None,
        best_shots: BestShots | None = None,
        people: PeopleSearch | None = None,
        assets: AssetStore | None = None,
        on_stage: StageTimer = lambda _stage, _seconds: None,
    ) -> None:
        """``assets``: where thumbnails are stored and forgotten (None: the engine's are
        dropped and the events carry none);
        ``best_shots`` ranks the groups ``duplicates`` finds (it needs ``duplicates``);
        ``attempts`` numbers each upload's attempt at its photo (its outcome's ``attempt``);
        ``refuse`` says why an upload of a forgotten photo or user becomes a dead letter."""
        self.codec, self.blobs, self.enricher, self.outputs = codec, blobs, enricher, outputs
        self.max_message_bytes = max_message_bytes
        self.skip, self.attempts, self.refuse = skip, attempts, refuse
        self.duplicates, self.people = duplicates, people
        self.best_shots = best_shots
        self.assets = assets
        self.on_stage = on_stage

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        enricher: Enricher,
        *,
        skip: SkipRule = never_skip,
        attempts: AttemptRule = first_attempt,
        refuse: RefusalRule = never_refuse,
        duplicates: DuplicateSearch | None = None,
        best_shots: BestShots | None = None,
        people: PeopleSearch | None = None,
        on_stage: StageTimer = lambda _stage, _seconds: None,
    ) -> Pipeline:
        """The pipeline ``settings`` configure around a loaded ``enricher``."""
        schemas = SchemaRepository(settings.paths.schemas)
        blobs = BlobStore.from_settings(settings)
        return cls(
            codec=codec_from_settings(settings, schemas),
            blobs=blobs,
            enricher=enricher,
            outputs=OutputBuilder(schemas),
            max_message_bytes=settings.kafka.max_message_bytes,
            skip=skip,
            attempts=attempts,
            refuse=refuse,
            duplicates=duplicates,
            best_shots=best_shots,
            people=people,
            assets=AssetStore.from_settings(settings, blobs),
            on_stage=on_stage,
        )

    def run(self, messages: Sequence[RawMessage]) -> Batch:
        """Process ``messages``; every one ends skipped, enriched or failed, with its output."""
        return self.finish(self.start(messages))

    def start(self, messages: Sequence[RawMessage]) -> Started:
        """The first half of ``run``: decode the events, skip, fetch, and hand the bytes to the
        engine's decode threads. A worker starts batch n+1 while batch n is in ``finish``."""
        batch = Batch([Photo(message) for message in messages])
        with self._stage(batch, "decode_event"):
            for photo in batch.photos:
                self._decode(photo)
        with self._stage(batch, "skip"):
            todo = [p for p in batch.photos if p.upload is not None and self._wanted(p)]
        with self._stage(batch, "fetch_blob"):
            data = self._fetch(todo)
        fetched = [p for p in todo if data.get(id(p)) is not None]
        pending = self.enricher.submit([self._input(p, data[id(p)] or b"") for p in fetched])
        return Started(batch, list(zip(fetched, pending, strict=True)))

    def finish(self, started: Started) -> Batch:
        """The second half of ``run``: inference, duplicates, outputs."""
        batch = started.batch
        with self._stage(batch, "skip_again"):
            # done, or forgotten, meanwhile by the batch before (started before that one was
            # recorded); one that was done then may have been forgotten since
            for photo in batch.photos:
                refusal = self.refuse(photo) if photo.skipped else None
                if refusal is not None:
                    photo.skipped = False
                    photo.fail(refusal, "refuse")
            engine = [(p, job) for p, job in started.engine if self._wanted(p)]
            wanted = {id(p) for p, _ in engine}
            self.enricher.abandon([job for p, job in started.engine if id(p) not in wanted])
        with self._stage(batch, "enrich"):
            results = self.enricher.complete([job for _, job in engine])
            for (photo, _), result in zip(engine, results, strict=True):
                photo.result = result
        if self.assets is not None:
            with self._stage(batch, "store_assets"):
                store_thumbnails(self.assets, batch.photos)
            with self._stage(batch, "forget_assets"):
                forget_assets(self.assets, batch.photos)
        with self._stage(batch, "duplicates"):
            batch.findings = self._search(batch.photos)
        with self._stage(batch, "best_shot"):
            batch.shots = self._rank(batch.photos, batch.findings)
        with self._stage(batch, "people"):
            batch.people = self._cluster(batch.photos)
        with self._stage(batch, "build"):
            self._build(batch)
        with self._stage(batch, "encode_output"):
            for photo in batch.photos:
                if photo.record is not None:
                    self._encode(photo)
        return batch

    def abandon(self, started: Started) -> None:
        """A started batch that will not be finished (its worker stops or loses it)."""
        self.enricher.abandon([job for _, job in started.engine])

    def quarantine(self, message: RawMessage, error: Exception) -> Batch:
        """``message`` as a batch of its own whose output is an INTERNAL_ERROR dead letter
        naming ``error`` (its type, message and stage) and keeping the original bytes: what a
        message that makes the pipeline raise becomes (streams/pipeline/poison.py)."""
        photo = Photo(message)
        self._decode(photo)
        detail = f"{type(error).__name__}: {error}"
        photo.fail(PhotoError(detail), stage_of(error))
        assert photo.failed is not None
        self._number(photo)
        photo.record = self.outputs.failed(message, photo.failed, photo.upload, photo.attempt)
        photo.value = self._encode_dead_letter(photo)
        return Batch([photo])

    def test(self, value: bytes, key: bytes | None = None) -> Photo:
        """One message through the whole path (for tests and the REPL, like Quix's sdf.test)."""
        return self.run([RawMessage("test", 0, 0, key, value)]).photos[0]

    @contextmanager
    def _stage(self, batch: Batch, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            name_stage(exc, name)  # where a dead letter for it will say it happened
            raise
        finally:
            batch.seconds[name] = time.perf_counter() - started
            self.on_stage(name, batch.seconds[name])

    def _decode(self, photo: Photo) -> None:
        try:
            decoded = self.codec.decode(photo.message.value)
        except MalformedEventError as exc:
            photo.fail(MalformedUploadError(str(exc)), "decode_event")
            return
        if decoded.event_type in FORGET_REQUESTS:
            photo.request = decoded.record  # the caller forgets; its answer is a PhotoRemoved
            return
        if decoded.event_type is not EventType.PHOTO_UPLOADED:
            error = MalformedUploadError(f"expected a PhotoUploaded, got a {decoded.event_type}")
            photo.fail(error, "decode_event")
            return
        photo.upload = decoded.record

    def _wanted(self, photo: Photo) -> bool:
        """Whether an upload is to be enriched: not refused (its photo or user forgotten: a
        dead letter) and not done already (skipped)."""
        if photo.result is not None:
            return False
        refusal = self.refuse(photo)
        if refusal is not None:
            photo.fail(refusal, "refuse")
            return False
        photo.skipped = self.skip(photo)
        return not photo.skipped

    def _fetch(self, photos: list[Photo]) -> dict[int, bytes | None]:
        """Every photo's bytes, fetched concurrently; a photo that cannot be fetched fails alone."""
        uploads = [p.upload for p in photos if p.upload is not None]  # decoded: all of them
        wanted = [(upload["blob"], upload.get("content_sha256")) for upload in uploads]
        fetched = self.blobs.fetch_many(wanted)
        return {id(p): self._fetched(p, r) for p, r in zip(photos, fetched, strict=True)}

    def _fetched(self, photo: Photo, result: bytes | Exception) -> bytes | None:
        assert photo.upload is not None
        if isinstance(result, PhotoError):
            photo.fail(result, "fetch_blob")
            return None
        if isinstance(result, Exception):  # an I/O error nobody foresaw: this photo's alone
            log.error(
                "fetch failed unexpectedly", photo_id=photo.upload["photo_id"], exc_info=result
            )
            photo.fail(PhotoError(f"unexpected {type(result).__name__}: {result}"), "fetch_blob")
            return None
        photo.fetched_bytes = len(result)
        claimed = photo.upload.get("byte_size")
        if claimed != len(result):
            log.warning(
                "byte_size differs from the fetched blob; the fetched size counts",
                photo_id=photo.upload["photo_id"],
                claimed=claimed,
                fetched=len(result),
            )
        return result

    @staticmethod
    def _input(photo: Photo, data: bytes) -> PhotoInput:
        assert photo.upload is not None
        return PhotoInput(str(photo.upload["photo_id"]), data, str(photo.upload["user_id"]))

    def _search(self, photos: list[Photo]) -> Findings:
        if self.duplicates is None:
            return Findings([None] * len(photos))
        searched = [p for p in photos if p.enriched is not None]
        findings = self.duplicates.search([_searched(p) for p in searched])
        by_photo = dict(zip(map(id, searched), findings.duplicate_of, strict=True))
        findings.duplicate_of = [by_photo.get(id(p)) for p in photos]
        return findings

    def _rank(self, photos: list[Photo], findings: Findings) -> ShotFindings:
        """Each searched photo into its duplicate group, in batch order."""
        if self.best_shots is None or self.duplicates is None:
            return ShotFindings()
        ranked = [p for p in photos if p.enriched is not None]
        found = self.best_shots.rank([_searched(p) for p in ranked], findings)
        for photo, record in zip(ranked, found.best_shot, strict=True):
            photo.best_shot = record
        return found

    def _cluster(self, photos: list[Photo]) -> PeopleFindings:
        """Each embedded face into its user's people, in batch order."""
        if self.people is None:
            return PeopleFindings()
        searched: list[tuple[Photo, PhotoFaces]] = []
        for photo in photos:
            enriched, upload = photo.enriched, photo.upload
            model = face_model(enriched.produced_by) if enriched is not None else None
            if enriched is None or upload is None or model is None:
                continue  # failed, or no face model ran
            # the preview is in the assets stored a stage before (a photo's fields lack them)
            preview = covers.preview_of(photo.assets, enriched.fields["width"])
            faces = PhotoFaces(
                upload["user_id"], upload["photo_id"], model, faces_of(enriched.fields), preview
            )
            searched.append((photo, faces))
        found = self.people.search([faces for _, faces in searched])
        for (photo, faces), assigned in zip(searched, found.assigned, strict=True):
            assert assigned is not None
            photo.people = Given.of(faces.model, assigned.clusters, faces.faces, faces.preview)
            photo.person_ids = assigned.persons
        return found

    def _number(self, photo: Photo) -> None:
        """Which attempt at its photo ``photo`` is (an undecoded message: always the first)."""
        number = self.attempts(photo) if photo.upload is not None else 1
        photo.attempt = Attempt.of(photo.message, number)

    def _build(self, batch: Batch) -> None:
        for photo, duplicate in zip(batch.photos, batch.findings.duplicate_of, strict=True):
            if photo.skipped:
                continue
            self._number(photo)
            if photo.request is not None:
                photo.record = self.outputs.removed(photo.request)
            elif photo.failed is not None:
                photo.record = self.outputs.failed(
                    photo.message, photo.failed, photo.upload, photo.attempt
                )
            elif photo.enriched is not None and photo.upload is not None:
                photo.record = self.outputs.enriched(
                    photo.upload,
                    photo.enriched,
                    duplicate,
                    photo.person_ids,
                    photo.best_shot,
                    photo.attempt,
                    photo.assets,
                )

    def _encode(self, photo: Photo) -> None:
        """The output's bytes, within the size limit. An enriched record that cannot be sent
        (a bug in its fields, or too large) becomes this photo's dead letter instead."""
        assert photo.record is not None
        if photo.request is not None:
            photo.value = self.codec.encode(EventType.PHOTO_REMOVED, photo.record)
            return
        if photo.failed is None:
            try:
                value = self.codec.encode(EventType.PHOTO_ENRICHED, photo.record)
            except EncodeError as exc:
                log.exception("enriched event does not fit its schema")
                self._fail_output(photo, PhotoError(str(exc)))
            else:
                budget = body_budget(self.max_message_bytes, photo.message.key)
                if len(value) <= budget:
                    photo.value = value
                    photo.shadows = self._encode_shadows(photo, budget)
                    return
                self._fail_output(
                    photo,
                    OutputTooLargeError(
                        f"the PhotoEnriched is {len(value)} bytes; at most {budget} fit in a "
                        f"message of {self.max_message_bytes} (DARKROOM_KAFKA_MAX_MESSAGE_BYTES)"
                    ),
                )
        photo.value = self._encode_dead_letter(photo)

    def _encode_shadows(self, photo: Photo, budget: int) -> list[bytes]:
        """A ShadowResult per variant that ran on the photo; one too large for a message goes
        without the variant's fields (its figures and times are what the report reads)."""
        assert photo.enriched is not None and photo.upload is not None
        upload = photo.upload
        return [
            encode_shadow(self.codec, self.outputs, upload, run, budget)
            for run in photo.enriched.variants
        ]

    def _fail_output(self, photo: Photo, error: PhotoError) -> None:
        photo.fail(error, "encode_output")
        assert photo.failed is not None
        photo.record = self.outputs.failed(photo.message, photo.failed, photo.upload, photo.attempt)

    def _encode_dead_letter(self, photo: Photo) -> bytes:
        assert photo.record is not None
        budget = body_budget(self.max_message_bytes, photo.message.key)
        value = self.codec.encode(EventType.PHOTO_FAILED, photo.record)
        if len(value) > budget:
            photo.record = fit_dead_letter(photo.record, len(value), budget)
            value = self.codec.encode(EventType.PHOTO_FAILED, photo.record)
        return value


def _searched(photo: Photo) -> Searched:
    """An enriched photo as the duplicate search and the best-shot ranking take it."""
    assert photo.upload is not None and photo.enriched is not None
    upload = photo.upload
    return upload["user_id"], upload["photo_id"], iso_utc(upload["uploaded_at"]), photo.enriched
