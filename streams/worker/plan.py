"""Every topic a worker with these settings uses, for an administrator to create beforehand
(`darkroom topics plan`): many clusters forbid CREATE to applications, and a worker runs without
it when all of these exist (it creates only what is missing)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from streams.config import Settings
from streams.kafka.topics import TopicSpec, project_topics
from streams.worker.app import create_stream_app


def planned_topics(settings: Settings) -> list[TopicSpec]:
    """The project's topics, the tables' changelogs (compacted) and Faust's leader topic."""
    with tempfile.TemporaryDirectory(prefix="darkroom-plan-") as folder:
        # building the app creates its data folder: a throwaway one, nothing is left behind
        worker = settings.worker.model_copy(update={"data_dir": Path(folder)})
        stream = create_stream_app(settings.model_copy(update={"worker": worker}))
        changelogs = stream.changelog_topics()
    leader = TopicSpec(
        f"{settings.worker.app_id}-__assignor-__leader", 1, settings.topics.replication
    )
    return [*project_topics(settings), *changelogs, leader]
