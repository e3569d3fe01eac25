"""`darkroom worker`: run the stream application (Faust) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import typer

from streams.cli.common import ExitCode, console, fail, state
from streams.kafka.clients import probe
from streams.worker.agent import DarkroomWorker
from streams.worker.app import create_stream_app


def worker(ctx: typer.Context) -> None:
    """Enrich photos.uploaded into photos.enriched / photos.failed, with tables and a web API."""
    settings = state(ctx).settings
    metadata = probe(settings)
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
    stream = create_stream_app(settings)
    stream.start_engine()  # load models before joining the group: no stall mid-rebalance
    web = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    console.print(
        f"worker {settings.worker.app_id} on {settings.kafka.bootstrap}; "
        f"models {stream.readiness.models}; web {web}",
        highlight=False,
    )
    try:
        DarkroomWorker(
            stream.app,
            loglevel=settings.log.level,
            override_logging=False,
            redirect_stdouts=False,
            quiet=True,
            shutdown_timeout_s=settings.worker.shutdown_timeout_s,
            in_flight=stream.in_flight,
        ).execute_from_commandline()
    except SystemExit:
        if stream.fatal is None:
            raise
    finally:
        stream.stop_engine()
    if stream.fatal is not None:
        fail(
            f"stopped: a batch could not be completed ({stream.fatal!r}); it was not "
            "acknowledged and is processed again on restart",
            ExitCode.FAILED,
        )
