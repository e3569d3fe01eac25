"""Configuration: one typed settings object, read from defaults, a TOML file and the environment.

Precedence, highest first: environment variables, the config file, defaults. Environment names
are ``DARKROOM_<SECTION>_<FIELD>`` (e.g. ``DARKROOM_KAFKA_BOOTSTRAP``); the config file is
``darkroom.toml`` in the working directory, or the path in ``DARKROOM_CONFIG`` / ``--config``.
"""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "DARKROOM_"
CONFIG_FILE_ENV = "DARKROOM_CONFIG"
DEFAULT_CONFIG_FILE = Path("darkroom.toml")
REPO_ROOT = Path(__file__).resolve().parent.parent


def shipped(name: str) -> Path:
    """The repository folder ``name`` (schemas, models): the checkout's in a clone or an
    editable install, else the copy an installed wheel carries inside the package."""
    in_checkout = REPO_ROOT / name
    if in_checkout.is_dir():
        return in_checkout
    return Path(str(resources.files("streams") / "_bundled" / name))


ClientProfileName = Literal["embedded", "standard"]

# What an upload event needs beside an inline photo's bytes (ids, URI, headers, framing).
INLINE_EVENT_ROOM_BYTES = 16 * 1024


class KafkaSettings(BaseModel):
    """How every Darkroom client reaches Kafka."""

    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers (host:port,...)")
    profile: ClientProfileName = Field(
        "embedded",
        description="Client tuning: 'embedded' for the tansu broker, 'standard' for Apache Kafka",
    )
    client_id: str = Field("darkroom", description="Client id sent to the broker")
    schema_registry_url: str | None = Field(
        None, description="Confluent Schema Registry URL; unset = Avro single-object encoding"
    )
    schema_registry_auth: SecretStr | None = Field(
        None, description="Schema Registry basic auth as user:password"
    )
    max_message_bytes: int = Field(
        1_000_000,
        ge=64 * 1024,
        description="Largest record any Darkroom producer sends; keep it at or below the "
        "broker's message.max.bytes (outputs are fitted to it, never dropped)",
    )
    librdkafka: dict[str, str] = Field(
        default_factory=dict,
        description="librdkafka settings for every client, the Faust worker's included "
        "(security.protocol, sasl.mechanism, sasl.username, ssl.ca.location, ...: "
        "streams/kafka/security.py)",
    )
    secret_files: dict[str, Path] = Field(
        default_factory=dict,
        description="librdkafka settings read from files, for secrets "
        '(e.g. {"sasl.password": "/run/secrets/kafka-password"}); never logged',
    )
    oauth_token_provider: str | None = Field(
        None,
        description="For sasl.mechanism OAUTHBEARER: 'module:callable' returning "
        "(token, expiry as epoch seconds) (streams/kafka/security.py)",
    )


class TopicSettings(BaseModel):
    """Topic names and how the embedded broker (or `darkroom topics`) creates them."""

    uploaded: str = Field("photos.uploaded", description="Upload events (input)")
    enriched: str = Field("photos.enriched", description="Enriched events (output)")
    failed: str = Field("photos.failed", description="Dead letters")
    shadow: str = Field(
        "photos.shadow", description="Variants measured beside production (ShadowResult)"
    )
    partitions: int = Field(4, ge=1, description="Partitions per topic when created")
    replication: int = Field(1, ge=1, description="Replication factor when created")


BrokerEngine = Literal["embedded", "kafka"]
BrokerSecurity = Literal["plaintext", "ssl", "sasl_ssl"]


class BrokerSettings(BaseModel):
    """The local broker that `darkroom broker start` runs: tansu or Apache Kafka (KRaft)."""

    engine: BrokerEngine = Field(
        "embedded",
        description="'embedded' = tansu (memory only, starts in 0.1 s); 'kafka' = Apache Kafka "
        "from Maven Central (needs Java 17+ and Maven; data kept on disk)",
    )
    host: str = Field("127.0.0.1", description="Listen address (loopback by default)")
    port: int = Field(9092, ge=1, le=65535, description="Listen port (of the first node)")
    state_dir: Path = Field(Path(".darkroom/broker"), description="Pid file, logs and data")
    start_timeout_s: float = Field(15.0, gt=0, description="Seconds to wait until it answers")
    kafka_version: str = Field("4.4.0", description="Apache Kafka version (engine 'kafka')")
    nodes: int = Field(1, ge=1, le=5, description="KRaft nodes (engine 'kafka'); 3 = failover")
    heap_mb: int = Field(512, ge=128, description="Java heap of each Kafka node (MB)")
    security: BrokerSecurity = Field(
        "plaintext",
        description="engine 'kafka': 'sasl_ssl' (SCRAM-SHA-256/512 and PLAIN over TLS) or 'ssl' "
        "(mutual TLS), with ACLs enforced; certificates and passwords in <state_dir>/security",
    )
    users: list[str] = Field(
        ["worker", "publisher", "reader", "operator", "consumer"],
        description="Users of a secured local Kafka besides the super user 'admin' (JSON list)",
    )
    cache_dir: Path = Field(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "darkroom" / "kafka",
        description="Where the Kafka jars are kept, one folder per version",
    )


class BlobSettings(BaseModel):
    """Where photo bytes live when they are not inline in the event."""

    root: Path = Field(Path(".darkroom/blobs"), description="Blob root for file:// URIs")
    inline_max_bytes: int = Field(
        256 * 1024, ge=0, description="Largest photo `publish --inline` puts in the event itself"
    )
    max_bytes: int = Field(
        50 * 1024 * 1024, gt=0, description="Largest photo accepted (BLOB_TOO_LARGE above)"
    )
    fetch_concurrency: int = Field(
        16, ge=1, le=256, description="Photos of one batch fetched at the same time"
    )
    assets_prefix: str = Field(
        ".assets",
        pattern=r"^\.[A-Za-z0-9_.-]*[A-Za-z0-9_-]$",
        description="Folder (under the blob root) or key prefix (in the photo's bucket) of the "
        "thumbnails: <prefix>/<user>/<photo>/<size>.<format>. It starts with '.', a name no "
        "user's folder has (ids' leading dots are encoded)",
    )
    asset_write_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="Tries to write a thumbnail file before its photo goes without "
        "(S3: s3_max_attempts)",
    )
    s3_buckets: list[str] = Field(
        default_factory=list,
        description="Buckets served for s3:// URIs (JSON list); an event naming another bucket "
        "is BLOB_MISSING. Empty = s3:// not served",
    )
    s3_endpoint: str | None = Field(
        None,
        description="S3-compatible endpoint URL (MinIO, Ceph, a local test server); unset = AWS",
    )
    s3_region: str | None = Field(
        None,
        description="Region; unset = the standard chain's (AWS_REGION, profile), else us-east-1",
    )
    s3_connect_timeout_s: float = Field(3.0, gt=0, description="Seconds to connect to the store")
    s3_read_timeout_s: float = Field(
        10.0, gt=0, description="Seconds a request may wait for the store's next bytes"
    )
    s3_request_timeout_s: float = Field(
        120.0, gt=0, description="Seconds one request may take in all, body included"
    )
    s3_max_attempts: int = Field(
        4, ge=1, le=20, description="Tries per request, with backoff between them"
    )
    s3_multipart_threshold_bytes: int = Field(
        8 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        description="`publish --to s3://` uploads photos at least this large in parts",
    )


class LogSettings(BaseModel):
    """structlog output."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")
    format: Literal["auto", "console", "json"] = Field(
        "auto", description="auto = console in a terminal, JSON lines otherwise"
    )


ProviderName = Literal["tensorrt", "cuda", "cpu"]


class EngineSettings(BaseModel):
    """The enrichment engine: which models, how batched, on which hardware."""

    models: str = Field(
        "all", description="Comma-separated production model names to run, or 'all'"
    )
    variants: str = Field(
        "all",
        description="Variants (models/ folders with variant_of) to run by their [rollout]: "
        "'all', 'none' or comma-separated names",
    )
    providers: list[ProviderName] = Field(
        ["tensorrt", "cuda", "cpu"], description="Execution providers to try, in order"
    )
    max_batch: int = Field(16, ge=1, le=256, description="Largest inference batch")
    decode_threads: int = Field(2, ge=1, description="Threads that decode and fit photos")
    intra_op_threads: int = Field(0, ge=0, description="onnxruntime threads per op (0 = cores)")
    spin_threads: bool = Field(
        False,
        description="Let onnxruntime's threads busy-wait for the next op: faster for one model "
        "alone, slower here, where six sessions and the decoding threads share the cores "
        "(benchmarks/threads.py)",
    )
    max_pixels: int = Field(
        100_000_000, gt=0, description="Photos with more pixels are refused (IMAGE_TOO_LARGE)"
    )
    blur_threshold: float = Field(
        50.0, ge=0, description="quality.is_blurry below this Laplacian variance"
    )
    max_aspect_ratio: float = Field(
        50.0,
        ge=1,
        description="Photos whose long side exceeds this many short sides are refused "
        "(DEGENERATE_IMAGE); wide panoramas are about 10:1",
    )
    max_jpeg_scans: int = Field(
        100,
        ge=1,
        description="JPEGs with more scans are refused (IMAGE_TOO_COMPLEX); a progressive "
        "JPEG has about 10, and each scan costs a pass over the whole photo",
    )
    photo_deadline_s: float = Field(
        10.0,
        gt=0,
        description="Longest a photo may spend decoding and preparing (DEADLINE_EXCEEDED "
        "after it; the rest of its batch does not wait)",
    )
    max_decoded_pixels_in_flight: int = Field(
        100_000_000,
        gt=0,
        description="Pixels the decode threads may hold at full size at once (6 bytes each "
        "at the peak of a PNG decode); a photo larger than this decodes alone",
    )
    variant_max_failure_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A variant failing on more than this share of its photos is switched off "
        "by the worker (after variant_min_photos)",
    )
    variant_min_photos: int = Field(
        20, ge=1, description="Photos a variant runs on before it can be switched off"
    )
    drift_window: int = Field(
        500,
        ge=20,
        description="Photos in each model's drift reference (its first) and current (its "
        "latest) window (streams/engine/drift.py)",
    )
    drift_significance: float = Field(
        0.001,
        gt=0,
        lt=0.5,
        description="How rarely sampling alone may pass for a model's drift (a signal's "
        "drift ratio reaches 1 at this significance)",
    )
    max_inference_pixels: int = Field(
        16 * 256 * 256,
        gt=0,
        description="Largest batch x input side^2 of one inference run, to bound activation "
        "memory: 16 inputs of 256 px, or one 960 px OCR input (~250 MB of activations each)",
    )
    thumbnail_sizes: list[int] = Field(
        [256, 960],
        description="Long sides (px) of the thumbnails made from each photo's decoded pixels "
        "(JSON list; [] = none); the largest is also the least the engine decodes",
    )
    thumbnail_formats: list[Literal["webp", "jpeg"]] = Field(
        ["webp", "jpeg"], description="Formats each thumbnail size is written in (JSON list)"
    )
    thumbnail_quality: int = Field(80, ge=1, le=100, description="Thumbnails' encoder quality")
    thumbnail_webp_effort: int = Field(
        4,
        ge=0,
        le=6,
        description="WebP encoder effort (libwebp's method): 0 fastest, 6 smallest",
    )
    thumbnail_webp_max_size: int = Field(
        512,
        ge=16,
        le=4096,
        description="Larger thumbnails (previews) are written as JPEG alone when JPEG is one of "
        "the formats: a 1440 px WebP costs the engine 5-10x a JPEG's time",
    )

    crop_ratios: list[str] = Field(
        ["1:1", "4:5", "16:9"],
        description="Aspect ratios of the crop boxes found for each photo, keeping faces whole "
        "(JSON list; [] = none)",
    )

    @model_validator(mode="after")
    def _crop_ratios_are_ratios(self) -> EngineSettings:
        wrong = [
            r for r in self.crop_ratios if not re.fullmatch(r"[1-9][0-9]{0,2}:[1-9][0-9]{0,2}", r)
        ]
        if wrong:
            raise ValueError(
                f"crop_ratios {wrong}: each must be like 4:5 (DARKROOM_ENGINE_CROP_RATIOS)"
            )
        return self

    @model_validator(mode="after")
    def _thumbnail_sizes_in_range(self) -> EngineSettings:
        if any(not 16 <= size <= 4096 for size in self.thumbnail_sizes):
            raise ValueError(
                f"thumbnail_sizes {self.thumbnail_sizes}: each must be 16 to 4096 px "
                "(DARKROOM_ENGINE_THUMBNAIL_SIZES)"
            )
        if self.thumbnail_sizes and not self.thumbnail_formats:
            raise ValueError("thumbnail_formats is empty while thumbnail_sizes asks for some")
        return self


class WorkerSettings(BaseModel):
    """The Faust worker (`darkroom worker`)."""

    app_id: str = Field("darkroom", description="Faust app id = consumer group = table prefix")
    data_dir: Path = Field(Path(".darkroom/worker"), description="RocksDB tables of this worker")
    web_host: str = Field("127.0.0.1", description="Interactive queries + metrics bind address")
    web_port: int = Field(6066, ge=1, le=65535, description="Interactive queries + metrics port")
    batch_size: int = Field(16, ge=1, description="Most uploads the agent takes at once")
    batch_wait_s: float = Field(0.2, gt=0, description="Longest wait to fill a batch (seconds)")
    guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="exactly_once needs Kafka transactions (not the embedded broker)",
    )
    duplicate_max_distance: int = Field(
        20, ge=0, le=64, description="Perceptual-hash bits that may differ for a candidate"
    )
    duplicate_min_correlation: float = Field(
        0.75, ge=-1, le=1, description="DCT-block correlation that makes a candidate a copy"
    )
    duplicate_min_similarity: float = Field(
        0.75,
        ge=-1,
        le=1,
        description="Embedding cosine that confirms a photo indexed before blocks were kept",
    )
    index_max_photos: int = Field(
        5000, ge=1, description="Most recent photos per user kept in the near-duplicate index"
    )
    people_join_distance: float = Field(
        0.5, gt=0, description="Face-embedding distance to a person's centroid that joins them"
    )
    people_merge_distance: float = Field(
        0.4, gt=0, description="Distance between two persons' centroids that merges them"
    )
    people_min_faces: int = Field(3, ge=1, description="Faces that make a candidate a person")
    people_max_clusters: int = Field(
        800, ge=1, description="Persons and candidates kept per user (~730 bytes each)"
    )
    similar_cache_mb: int = Field(
        1024,
        ge=1,
        description="Memory for the users' embedding matrices that answer similar-photo "
        "queries (50,000 photos take 256 MB); least recently asked first out",
    )
    similar_cache_users: int = Field(
        10_000, ge=1, description="Most users whose similar-photo matrices are kept at once"
    )
    api_token_file: Path | None = Field(
        None,
        description="Bearer tokens the HTTP API accepts, one a line (read again when it "
        "changes); unset = no token asked, which only a loopback web_host allows",
    )
    api_allow_anonymous: bool = Field(
        False, description="Serve the data pages without a token on a non-loopback web_host"
    )
    api_open_health: bool = Field(True, description="/healthz and /metrics need no token")
    api_max_requests: int = Field(
        16, ge=1, description="Data requests a worker has in hand at once; more are 429"
    )
    api_query_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Share of one core that data requests may take: each waits for its turn, "
        "charged 0.5 ms plus its query's CPU time (queries run in one thread)",
    )
    api_header_timeout_s: float = Field(
        10.0, gt=0, description="Seconds a client has to send a request's headers"
    )
    api_keepalive_timeout_s: float = Field(
        20.0, gt=0, description="Seconds an idle kept-alive HTTP connection stays open"
    )
    broker_grace_s: float = Field(
        10.0,
        ge=0,
        description="/healthz says 503 once the consumer has been without its group's "
        "coordinator (the broker away, a right revoked) for longer than this",
    )
    standby_replicas: int = Field(
        1,
        ge=0,
        description="Standby copies of each table partition that other workers keep up to "
        "date (Faust's table_standby_replicas), so that a takeover reads less changelog",
    )
    shutdown_timeout_s: float = Field(
        20.0,
        gt=0,
        description="Longest clean stop; past it the worker exits (status 1), abandoning its "
        "unacknowledged batch to be processed again",
    )
    forget_remember_days: float = Field(
        30.0,
        gt=0,
        description="How long a photo's deletion or a user's erasure is remembered (only the "
        "ids and the time), so that a late or replayed upload of it is refused; then its key "
        "is deleted too",
    )


class PathSettings(BaseModel):
    """Folders of the repository that the code reads at run time."""

    schemas: Path = Field(shipped("schemas"), description="Avro schemas (source of truth)")
    models: Path = Field(shipped("models"), description="Model repository (manifests)")
    model_cache: Path = Field(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "darkroom" / "models",
        description="Where `darkroom models build` writes the ONNX files",
    )


class Settings(BaseSettings):
    """Everything Darkroom can be told. Sections map to env names DARKROOM_<SECTION>_<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    broker: BrokerSettings = BrokerSettings()
    blobs: BlobSettings = BlobSettings()
    log: LogSettings = LogSettings()
    engine: EngineSettings = EngineSettings()
    worker: WorkerSettings = WorkerSettings()
    paths: PathSettings = PathSettings()

    @model_validator(mode="after")
    def _inline_photos_fit(self) -> Settings:
        """An inline photo must leave room for the rest of its event in one message."""
        room = self.kafka.max_message_bytes - INLINE_EVENT_ROOM_BYTES
        if self.blobs.inline_max_bytes > room:
            raise ValueError(
                f"blobs.inline_max_bytes ({self.blobs.inline_max_bytes}) must be at most "
                f"kafka.max_message_bytes - {INLINE_EVENT_ROOM_BYTES} ({room}): an inline photo "
                "travels inside its event"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment beats the TOML file, which beats defaults."""
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file_path())
        return (init_settings, env_settings, toml)


def config_file_path() -> Path:
    """The TOML file in effect: $DARKROOM_CONFIG, else ./darkroom.toml (may not exist)."""
    return Path(os.environ.get(CONFIG_FILE_ENV) or DEFAULT_CONFIG_FILE)


def load_settings(**overrides: Any) -> Settings:
    """Read the effective settings; keyword overrides beat every other source (tests use them)."""
    return Settings(**overrides)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that reproduce ``settings`` in a child process (secrets included)."""
    env: dict[str, str] = {}
    for section_name in type(settings).model_fields:
        section = getattr(settings, section_name)
        for field_name, value in section:
            if value is None:
                continue
            name = f"{ENV_PREFIX}{section_name}_{field_name}".upper()
            if isinstance(value, SecretStr):
                env[name] = value.get_secret_value()
            elif isinstance(value, dict | list):
                env[name] = json.dumps(value, default=str)  # Path values as text
            else:
                env[name] = str(value)
    return env
