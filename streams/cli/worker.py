"""`darkroom worker`: run the stream application (Faust) until Ctrl-C or SIGTERM."""

from __future__ import annotations

from pathlib import Path

import typer

from streams.cli.common import ExitCode, console, fail, state
from streams.kafka.clients import probe
from streams.kafka.rights import require_group, require_topics, require_transactions
from streams.kafka.topics import ensure_topics, shadow_topic
from streams.worker import local_state
from streams.worker.access import ApiAccess
from streams.worker.agent import DarkroomWorker
from streams.worker.app import create_stream_app


def worker(
    ctx: typer.Context,
    reset_local_state: bool = typer.Option(
        False,
        "--reset-local-state",
        help="Drop this worker's local tables first and rebuild them from the changelog "
        "(after the topics were deleted or recreated).",
    ),
) -> None:
    """Enrich photos.uploaded into photos.enriched / photos.failed, with tables and a web API."""
    settings = state(ctx).settings
    ApiAccess.from_settings(settings.worker)  # an exposed API without a token: refused first
    metadata = probe(settings)
    t = settings.topics
    require_topics(
        settings,
        metadata,
        [t.uploaded, t.enriched, t.failed],
        "`darkroom broker start` creates them for the local brokers; `darkroom topics plan` "
        "lists what to create on a cluster of your own",
    )
    # a missing right is a named error now, not a silent wait in the group or a dead producer
    require_group(settings, settings.worker.app_id, t.uploaded)
    if settings.worker.guarantee == "exactly_once":
        require_transactions(settings, f"{settings.worker.app_id}-rights-check")
    stream = create_stream_app(settings)
    ensure_topics(settings, [shadow_topic(settings), *stream.changelog_topics()])
    tabledir = Path(stream.app.conf.tabledir)
    local_state.prepare(settings, tabledir, reset=reset_local_state)
    stream.start_engine()  # load models before joining the group: no stall mid-rebalance
    web = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    console.print(
        f"worker {settings.worker.app_id} on {settings.kafka.bootstrap}; "
        f"models {stream.readiness.models}; web {web}",
        highlight=False,
    )
    clean = False
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
    except SystemExit as stopped:
        clean = stream.fatal is None and stopped.code in (0, None)
        if stream.fatal is None:
            raise
    finally:
        stream.stop_engine()
        if clean:  # Faust has closed the tables; an exactly_once restart may keep them
            local_state.mark_clean_stop(tabledir)
    if stream.fatal is not None:
        fail(
            f"stopped: a batch could not be completed ({stream.fatal!r}); it was not "
            "acknowledged and is processed again on restart",
            ExitCode.FAILED,
        )
