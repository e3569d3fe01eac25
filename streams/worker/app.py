"""The Faust application: topics, tables, the enrichment agent and the web views, from Settings.

    stream = create_stream_app(settings)   # what `darkroom worker` runs

The uploads topic is read as raw bytes and decoded by Darkroom's codec, so an event that is not
valid Avro still reaches the agent and becomes a dead letter with its bytes kept, instead of
crashing Faust's deserializer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faust

from streams.blobs import BlobStore
from streams.config import Settings
from streams.contracts.codec import make_codec
from streams.contracts.schemas import SchemaRepository
from streams.engine import Enricher
from streams.kafka.profiles import get_profile
from streams.logs import get_logger
from streams.models.repository import ModelRepository
from streams.worker.dedup import DuplicatePolicy
from streams.worker.metrics import WorkerMetrics
from streams.worker.outputs import OutputBuilder
from streams.worker.processor import BatchProcessor
from streams.worker.tables import Tables
from streams.worker.views import register_views

log = get_logger("darkroom.worker")


class WorkerConfigError(ValueError):
    """Settings that cannot work (e.g. exactly-once on a broker without transactions)."""


class DarkroomApp(faust.App):
    """faust.App plus the consumer fetch wait that streams.worker.transport applies."""

    fetch_max_wait_ms: int = 500


@dataclass
class StreamApp:
    """The assembled worker; the engine is loaded when the worker starts, not at import."""

    settings: Settings
    app: DarkroomApp
    uploads: Any
    enriched: Any
    failed: Any
    tables: Tables
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    enricher: Any = None
    processor: BatchProcessor | None = None
    ready: bool = False

    def start_engine(self) -> None:
        """Load every model (seconds) and wire the batch processor."""
        settings = self.settings
        repository = ModelRepository(settings.paths.models, settings.paths.model_cache)
        self.enricher = Enricher(settings.engine, repository)
        schemas = SchemaRepository(settings.paths.schemas)
        auth = settings.kafka.schema_registry_auth
        self.processor = BatchProcessor(
            codec=make_codec(
                schemas,
                settings.kafka.schema_registry_url,
                auth.get_secret_value() if auth else None,
            ),
            blobs=BlobStore(settings.blobs.root, settings.blobs.max_bytes),
            enricher=self.enricher,
            tables=self.tables,
            outputs=OutputBuilder(schemas),
            metrics=self.metrics,
            enriched_topic=self.enriched,
            failed_topic=self.failed,
            policy=DuplicatePolicy(
                settings.worker.duplicate_max_distance,
                settings.worker.duplicate_min_similarity,
                settings.worker.index_max_photos,
            ),
        )
        self.ready = True

    def stop_engine(self) -> None:
        """Release threads."""
        self.ready = False
        if self.processor is not None:
            self.processor.close()
        if self.enricher is not None:
            self.enricher.close()


def create_stream_app(settings: Settings) -> StreamApp:
    """Build the Faust app for ``settings``."""
    profile = get_profile(settings.kafka.profile)
    worker = settings.worker
    if worker.guarantee == "exactly_once" and not profile.transactions:
        raise WorkerConfigError(
            "exactly_once needs Kafka transactions, which the embedded broker does not have; "
            "use DARKROOM_WORKER_GUARANTEE=at_least_once (idempotent effects) or a real Kafka"
        )
    worker.data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = DarkroomApp(
        worker.app_id,
        broker=f"darkroom://{settings.kafka.bootstrap}",
        store="rocksdb://",
        datadir=str(worker.data_dir),
        processing_guarantee=worker.guarantee,
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication,
        consumer_auto_offset_reset="earliest",
        broker_client_id=settings.kafka.client_id,
        web_enabled=True,
        web_bind=worker.web_host,
        web_host=worker.web_host,
        web_port=worker.web_port,
        autodiscover=False,
        table_standby_replicas=0,
        **_faust_settings(profile.faust),
    )
    app.fetch_max_wait_ms = profile.fetch_max_wait_ms
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    stream = StreamApp(
        settings=settings,
        app=app,
        uploads=app.topic(settings.topics.uploaded, **raw),
        enriched=app.topic(settings.topics.enriched, **raw),
        failed=app.topic(settings.topics.failed, **raw),
        tables=Tables.create(app, settings.topics.partitions),
    )

    @app.agent(stream.uploads, name="enrich")
    async def enrich(events_stream: Any) -> None:
        async for events in events_stream.take_events(
            worker.batch_size, within=worker.batch_wait_s
        ):
            assert stream.processor is not None
            await stream.processor.process(events)

    register_views(stream)
    return stream


def _faust_settings(values: Any) -> dict[str, Any]:
    """The profile's Faust settings as keyword arguments."""
    return dict(values)
