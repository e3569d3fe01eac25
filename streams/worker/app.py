"""The Faust application: topics, tables, the enrichment agent and the web views, from Settings.

    stream = create_stream_app(settings)   # what `darkroom worker` runs

The uploads topic is read as raw bytes and decoded by the pipeline's codec, so an event that is
not valid Avro still reaches the agent and becomes a dead letter with its bytes kept, instead of
crashing Faust's deserializer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import EventT

from streams.config import Settings
from streams.engine import Enricher
from streams.errors import UsageError
from streams.kafka.profiles import get_profile
from streams.kafka.security import KafkaSecurity
from streams.kafka.topics import TopicSpec
from streams.logs import get_logger
from streams.pipeline.keys import photo_key
from streams.pipeline.similar import SimilarPhotos
from streams.worker.access import ApiAccess
from streams.worker.agent import InFlight, consume, describe, exit_now, stop_self
from streams.worker.continuity import Continuity, first_committed_record
from streams.worker.forgetting import Forgetting
from streams.worker.lag import Progress
from streams.worker.metrics import WorkerMetrics
from streams.worker.processor import BatchProcessor
from streams.worker.queries import QueryGate
from streams.worker.readers import table_pipeline
from streams.worker.tables import Tables, user_rows
from streams.worker.transport import batch_gate, drain
from streams.worker.views import Readiness, register_views
from streams.worker.web import Web, WebTimeouts

log = get_logger("darkroom.worker")

# How often the worker looks for uploads fetched but never delivered, and how long a partition
# must have been quiet with its next upload fetched before it is read again (seconds).
LOST_CHECK_S, LOST_AFTER_S = 2.0, 5.0


class WorkerConfigError(UsageError):
    """Settings that cannot work (e.g. exactly-once on a broker without transactions)."""


class DarkroomApp(faust.App):
    """faust.App plus the consumer fetch wait that streams.worker.transport applies."""

    fetch_max_wait_ms: int = 500
    continuity: Continuity | None = None  # read by streams.worker.transport's consumer
    web_timeouts: WebTimeouts = WebTimeouts()  # read by streams.worker.web's driver

    def _new_web(self) -> Any:
        return Web(self)  # Faust's aiohttp driver with timeouts for slow clients


@dataclass
class StreamApp:
    """The assembled worker; the engine is loaded when the worker starts, not at import."""

    settings: Settings
    app: DarkroomApp
    uploads: Any
    enriched: Any
    failed: Any
    shadow: Any
    tables: Tables
    similar: SimilarPhotos
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    readiness: Readiness = field(default_factory=Readiness)
    in_flight: InFlight = field(default_factory=InFlight)
    enricher: Enricher | None = None
    processor: BatchProcessor | None = None
    fatal: BaseException | None = None  # why the agent stopped the worker, if it did
    gate: QueryGate | None = None  # the web API's requests in hand and query thread

    def start_engine(self) -> None:
        """Load every model (seconds) and wire the batch processor."""
        settings, worker = self.settings, self.settings.worker
        enricher = self.enricher = Enricher.from_settings(settings)
        stage_seconds = self.metrics.stage_seconds
        forgetting = Forgetting(self.tables, self.similar, worker.forget_remember_days * 86400)
        pipeline = table_pipeline(
            settings,
            enricher,
            self.tables,
            refuse=forgetting,
            on_stage=lambda stage, seconds: stage_seconds.labels(stage).observe(seconds),
        )
        self.processor = BatchProcessor(
            pipeline=pipeline,
            tables=self.tables,
            metrics=self.metrics,
            versions=enricher.model_versions_for,
            topics={"enriched": self.enriched, "failed": self.failed, "shadow": self.shadow},
            flush=lambda: drain(self.app),
            similar=self.similar,
            forgetting=forgetting,
        )
        self.readiness.models = enricher.model_versions
        self.readiness.switched_off = enricher.watch.switched_off
        self.metrics.track_switched_off(enricher.watch.switched_off)
        self.metrics.track_drift(enricher.drift)
        self.readiness.variants = {
            v.manifest.key: f"{v.mode} {v.manifest.rollout.percent:g}%"  # type: ignore[union-attr]
            for v in enricher.variants
        }

    def changelog_topics(self) -> list[TopicSpec]:
        """The tables' changelog topics as Faust would create them (see streams.kafka.topics:
        created by Darkroom first, they are usable before Faust's consumer looks at them)."""
        specs = []
        for table in self.app.tables.values():
            topic = table.changelog_topic
            policy = [
                name
                for name, on in (("compact", topic.compacting), ("delete", topic.deleting))
                if on
            ]
            config = {"cleanup.policy": ",".join(policy)} if policy else {}
            specs.append(
                TopicSpec(
                    topic.get_topic_name(),
                    topic.partitions or table.partitions,
                    self.settings.topics.replication,
                    config,
                )
            )
        return specs

    def stop_engine(self) -> None:
        """Release threads."""
        self.readiness.models = {}
        if self.processor is not None:
            self.processor.close()
        if self.enricher is not None:
            self.enricher.close()
        if self.gate is not None:
            self.gate.close()

    def on_fatal(self, error: BaseException, events: Sequence[EventT[Any]]) -> None:
        """A batch could not be completed: stop without acknowledging it."""
        self.fatal = error
        self.readiness.models = {}
        log.critical(
            "batch not completed; stopping the worker without acknowledging it",
            batch=describe(events),
            error=repr(error),
            exc_info=error,
        )
        if self.settings.worker.guarantee == "exactly_once":
            exit_now()  # a clean stop would commit the batch's outputs (see exit_now)
        stop_self()


def create_stream_app(settings: Settings) -> StreamApp:
    """Build the Faust app for ``settings``."""
    profile = get_profile(settings.kafka.profile)
    worker = settings.worker
    if worker.guarantee == "exactly_once" and not profile.transactions:
        raise WorkerConfigError(
            "exactly_once needs Kafka transactions, which the embedded broker does not have; "
            "use DARKROOM_WORKER_GUARANTEE=at_least_once (idempotent effects) or a real Kafka"
        )
    access = ApiAccess.from_settings(worker)  # before anything starts: exposed data refused
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
        # the same security as every confluent client (streams/kafka/security.py)
        broker_credentials=KafkaSecurity.from_settings(settings.kafka).faust_credentials(),
        producer_max_request_size=settings.kafka.max_message_bytes,
        web_enabled=True,
        web_bind=worker.web_host,
        web_host=worker.web_host,
        web_port=worker.web_port,
        # Faust's own pages (/router/, /table/<name>/<key>/, /graph/, /stats/) would serve
        # every table to anyone who reaches the port: only Darkroom's documented pages are on
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        autodiscover=False,
        table_standby_replicas=worker.standby_replicas,
        **_faust_settings(profile.faust),
    )
    app.fetch_max_wait_ms = profile.fetch_max_wait_ms
    app.web_timeouts = WebTimeouts(worker.api_header_timeout_s, worker.api_keepalive_timeout_s)
    continuity = app.continuity = Continuity(first_committed_record(settings))
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
        shadow=app.topic(settings.topics.shadow, **raw),
        tables=(tables := Tables.create(app, settings.topics.partitions)),
        similar=SimilarPhotos(
            lambda user: user_rows(tables.embeddings, user),
            lambda user, photo: tables.embeddings.get(photo_key(user, photo)),
            worker.similar_cache_mb << 20,
            worker.similar_cache_users,
        ),
        gate=(gate := QueryGate(worker.api_max_requests, worker.api_query_share)),
    )

    @app.agent(stream.uploads, name="enrich")
    async def enrich(events_stream: Any) -> None:
        assert stream.processor is not None
        await consume(
            events_stream,
            stream.processor,
            batch_size=worker.batch_size,
            within_s=worker.batch_wait_s,
            in_flight=stream.in_flight,
            on_fatal=stream.on_fatal,
            gate=batch_gate(app),
            continuity=continuity,
            consumer=app.consumer,
            is_request=stream.processor.is_request,
        )

    async def recover_lost_uploads() -> None:
        # uploads Faust fetched around a rebalance and dropped (streams/worker/continuity.py);
        # only while the agent is idle, when nothing fetched can still be on its way to it
        if app.rebalancing or app.in_recovery or stream.in_flight.batches:
            return
        if stream.readiness.recovered:
            await continuity.recover_lost(app.consumer, quiet_s=LOST_AFTER_S)

    app.timer(LOST_CHECK_S)(recover_lost_uploads)

    def recovered(_sender: Any, /, *_args: Any, signal: Any, **_kwargs: Any) -> None:
        # sent after the assignment and table recovery (faust/tables/recovery.py)
        stream.readiness.recovered = True
        stream.similar.forget()  # other workers may have changed the users' rows meanwhile

    app.on_rebalance_complete.connect(recovered)
    progress = Progress(app, settings.topics.uploaded, stream.in_flight, continuity)
    stream.metrics.registry.register(progress)  # lag, progress, rebalances (streams/worker/lag)
    app.on_rebalance_complete.connect(progress.rebalanced)

    stream.readiness.broker_grace_s = worker.broker_grace_s
    register_views(
        app,
        stream.tables,
        stream.uploads,
        stream.metrics,
        stream.readiness,
        stream.similar,
        min_faces=worker.people_min_faces,
        access=access,
        gate=gate,
    )
    return stream


def _faust_settings(values: Any) -> dict[str, Any]:
    """The profile's Faust settings as keyword arguments."""
    return dict(values)
