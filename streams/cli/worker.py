"""`darkroom worker`: run the stream application (Faust) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import faust
import typer

from streams.cli.common import ExitCode, console, fail, state
from streams.engine.runners import EngineConfigError
from streams.inference.sessions import InferenceSetupError
from streams.kafka.clients import BrokerUnreachableError, probe
from streams.models.repository import ModelNotBuiltError
from streams.worker.app import WorkerConfigError, create_stream_app


def worker(ctx: typer.Context) -> None:
    """Enrich photos.uploaded into photos.enriched / photos.failed, with tables and a web API."""
    settings = state(ctx).settings
    try:
        metadata = probe(settings)
    except BrokerUnreachableError as exc:
        fail(str(exc), ExitCode.UNREACHABLE)
    missing = [
        t
        for t in (settings.topics.uploaded, settings.topics.enriched, settings.topics.failed)
        if t not in metadata.topics
    ]
    if missing:
        fail(
            f"topics missing on {settings.kafka.bootstrap}: {', '.join(missing)} "
            "(`darkroom broker start` creates them for the embedded broker)"
        )
    try:
        stream = create_stream_app(settings)
        stream.start_engine()  # load models before joining the group: no stall mid-rebalance
    except (WorkerConfigError, EngineConfigError, ModelNotBuiltError, InferenceSetupError) as exc:
        fail(str(exc))
    web = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    console.print(
        f"worker {settings.worker.app_id} on {settings.kafka.bootstrap}; "
        f"models {stream.enricher.model_versions}; web {web}",
        highlight=False,
    )
    try:
        faust.Worker(
            stream.app,
            loglevel=settings.log.level,
            override_logging=False,
            redirect_stdouts=False,
            quiet=True,
        ).execute_from_commandline()
    finally:
        stream.stop_engine()
